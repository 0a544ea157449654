"""The mail transport family's check IDs, each with the function(s) that produce it."""

from __future__ import annotations

from vigie.scanner import mail
from vigie.scanner.checks_table import ChecksTable
from vigie.scanner.mail import _judge

CHECKS: ChecksTable = {
    "mail.starttls.missing": (_judge.address_findings,),
    "mail.tls.weak": (_judge.address_findings,),
    "mail.cert.invalid": (_judge.address_findings,),
    "mail.dane.invalid": (_judge.address_findings,),
    "mail.dane.missing": (_judge.host_findings,),
    "mail.mta_sts.missing": (_judge.sts_findings,),
    "mail.mta_sts.invalid": (_judge.sts_findings,),
    "mail.mta_sts.testing": (_judge.sts_findings,),
    "mail.tlsrpt.missing": (_judge.tlsrpt_findings,),
    "mail.null_mx.missing": (mail.null_mx_findings,),
}
