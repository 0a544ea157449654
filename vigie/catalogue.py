"""The check catalogue: every check ID of CHECKS.md with its default severity
and its English texts: title, remediation and why it matters.

The English texts are the gettext msgids of the ``checks`` domain; their
French translations live in ``vigie/locale/fr/LC_MESSAGES/checks.po`` and are
read through :mod:`vigie.i18n` (``check_title``, ``check_remediation``, ...).
After changing a text here run ``python scripts/extract_messages.py checks``:
the French entry becomes fuzzy until a translator reviews it.

Configuration snippets for common stacks (nginx, Apache, IIS, ...) live in
``vigie/data/remediation_snippets.toml`` and are not translated.

Check IDs are a public interface: never rename one; a retired check keeps its
ID reserved here.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType

from vigie.model import Family, Severity, family_of


@dataclass(frozen=True)
class CheckSpec:
    """One check: its public ID, default severity and English texts (msgids)."""

    check_id: str
    severity: Severity
    title: str
    remediation: str
    why_it_matters: str = ""

    @property
    def family(self) -> Family:
        return family_of(self.check_id)


_SPECS: tuple[CheckSpec, ...] = (
    # --- Services and ports ---------------------------------------------------
    CheckSpec(
        "service.open_port",
        Severity.INFO,
        title="Open TCP port",
        remediation=(
            "Confirm that this service is meant to be reachable from the internet. If it is not, "
            "close the port on the host firewall or the perimeter firewall, or make the service "
            "listen on an internal address only. Keep the list of exposed services short and "
            "documented, as ANSSI's guide to IT hygiene recommends."
        ),
        why_it_matters=(
            "Every reachable port adds to the attack surface; the inventory shows what the "
            "internet can reach."
        ),
    ),
    CheckSpec(
        "service.database.exposed",
        Severity.HIGH,
        title="Database server reachable from the internet",
        remediation=(
            "A database should only be reachable by the application servers that use it. Make the "
            "service listen on localhost or an internal interface (for example bind-address in "
            "MySQL, listen_addresses in PostgreSQL, bind in Redis) and block the port on the "
            "firewall. If remote access is needed for administration, go through a VPN or an SSH "
            "tunnel rather than opening the port."
        ),
        why_it_matters=(
            "An exposed database can be attacked directly (password guessing, vulnerabilities), "
            "bypassing the application in front of it."
        ),
    ),
    CheckSpec(
        "service.database.no_auth",
        Severity.CRITICAL,
        title="Database answers without authentication",
        remediation=(
            "Treat this as an incident: the data may already have been copied or altered, so check "
            "the logs and alert the CERT. Enable authentication at once (requirepass or ACL users "
            "in Redis, security.authorization in MongoDB, the security features of "
            "Elasticsearch/OpenSearch, SASL in memcached) and stop exposing the port: make the "
            "service listen on an internal address and filter it on the firewall. Then change the "
            "secrets stored in the database."
        ),
        why_it_matters=(
            "Anyone on the internet can read, change or delete the data, and some database engines "
            "even allow code execution."
        ),
    ),
    CheckSpec(
        "service.remote_admin.exposed",
        Severity.HIGH,
        title="Remote administration service reachable from the internet",
        remediation=(
            "Close these ports to the internet on the firewall. Administer servers through a VPN "
            "or a dedicated administration network, with multi-factor authentication, as ANSSI "
            "recommends for the administration of information systems. Replace Telnet with SSH; "
            "SMB must never be exposed outside the internal network."
        ),
        why_it_matters=(
            "Telnet, RDP, VNC, SMB, WinRM and X11 are favourite targets for password guessing and "
            "wormable vulnerabilities, and a common way in for ransomware."
        ),
    ),
    CheckSpec(
        "service.ssh.exposed",
        Severity.INFO,
        title="SSH reachable from the internet",
        remediation=(
            "If SSH must stay reachable, allow key-based authentication only, keep OpenSSH up to "
            "date and, where possible, restrict the source addresses allowed to connect (firewall "
            "or AllowUsers). Otherwise reach the server through a VPN and close port 22 to the "
            "internet. ANSSI's recommendations for a secure use of OpenSSH describe a hardened "
            "configuration."
        ),
        why_it_matters=(
            "SSH is a legitimate administration channel, but every exposed instance receives "
            "constant password-guessing attempts."
        ),
    ),
    CheckSpec(
        "service.ssh.password_auth",
        Severity.MEDIUM,
        title="SSH accepts password authentication",
        remediation=(
            "Disable password logins and use public-key authentication: set PasswordAuthentication "
            "no and KbdInteractiveAuthentication no (ChallengeResponseAuthentication on older "
            "OpenSSH versions) in sshd_config, then reload sshd. Install the administrators' keys "
            "before the change and keep a console access in case of mistakes."
        ),
        why_it_matters=(
            "Passwords can be guessed or reused from leaks; keys cannot be attacked that way."
        ),
    ),
    CheckSpec(
        "service.ftp.exposed",
        Severity.MEDIUM,
        title="FTP service reachable (credentials sent in clear text)",
        remediation=(
            "Replace FTP with SFTP (over SSH), or at least with FTPS with TLS required for both "
            "logins and data (ssl_enable=YES, force_local_logins_ssl=YES and "
            "force_local_data_ssl=YES in vsftpd). If the service is no longer used, stop it and "
            "close port 21. Change the passwords of the FTP accounts, which may have been captured."
        ),
        why_it_matters=(
            "FTP sends user names, passwords and files unencrypted, so anyone on the network path "
            "can capture them."
        ),
    ),
    CheckSpec(
        "service.ftp.anonymous",
        Severity.HIGH,
        title="FTP accepts anonymous login",
        remediation=(
            "Disable anonymous access (anonymous_enable=NO in vsftpd, or the equivalent in your FTP "
            "server) unless the server is a deliberate public mirror. If it is, make sure it is "
            "read-only and holds nothing internal, and declare the exception to the CERT. Check the "
            "served directories for files that should not be public."
        ),
        why_it_matters=(
            "Anyone can list and download the files, and if writing is allowed the server can be "
            "used to host malware or illegal content."
        ),
    ),
    CheckSpec(
        "service.cleartext_mail",
        Severity.LOW,
        title="Mail service without STARTTLS",
        remediation=(
            "Enable TLS on the mail server and offer STARTTLS on POP3, IMAP and submission, or "
            "better, use implicit TLS on ports 995, 993 and 465 as RFC 8314 recommends. Refuse "
            "authentication before TLS (for example smtpd_tls_auth_only = yes in Postfix, "
            "disable_plaintext_auth = yes in Dovecot). Close the cleartext ports that clients no "
            "longer need."
        ),
        why_it_matters=(
            "Mail clients then send passwords and messages in clear text across the network."
        ),
    ),
    CheckSpec(
        "service.version_disclosed",
        Severity.LOW,
        title="Service banner discloses the exact software version",
        remediation=(
            "Configure the service to announce its product name only, without the version (for "
            "example DebianBanner no in OpenSSH on Debian, ftpd_banner in vsftpd, smtpd_banner in "
            "Postfix). Hiding the version fixes no vulnerability: keep the software up to date, and "
            "check now whether the disclosed version has known vulnerabilities."
        ),
        why_it_matters=(
            "An exact version lets attackers pick the known exploits for that release without "
            "probing further."
        ),
    ),
    # --- TLS ------------------------------------------------------------------
    CheckSpec(
        "tls.missing",
        Severity.HIGH,
        title="Web application without HTTPS",
        remediation=(
            "Obtain a certificate for this name (free from Let's Encrypt with an ACME client such "
            "as certbot, or from your usual certificate authority) and serve the application over "
            "HTTPS. Then redirect every HTTP request to HTTPS and enable HSTS. Follow Mozilla's "
            "'intermediate' configuration or ANSSI's recommendations for TLS."
        ),
        why_it_matters=(
            "Without HTTPS, logins, personal data and pages can be read and modified by anyone on "
            "the network path."
        ),
    ),
    CheckSpec(
        "tls.protocol.sslv2",
        Severity.CRITICAL,
        title="SSL 2.0 accepted",
        remediation=(
            "Disable SSL 2.0 at once and allow only TLS 1.2 and TLS 1.3 (RFC 6176 prohibits SSL "
            "2.0). Support for SSL 2.0 usually means very old software: upgrade the server or its "
            "TLS library. Because of DROWN, also check that no other server using the same private "
            "key still accepts SSL 2.0."
        ),
        why_it_matters=(
            "SSL 2.0 is broken beyond repair (DROWN): it lets an attacker decrypt traffic, even "
            "traffic sent with newer protocols using the same key."
        ),
    ),
    CheckSpec(
        "tls.protocol.sslv3",
        Severity.HIGH,
        title="SSL 3.0 accepted",
        remediation=(
            "Disable SSL 3.0 and allow only TLS 1.2 and TLS 1.3, for example ssl_protocols TLSv1.2 "
            "TLSv1.3 in nginx or SSLProtocol -all +TLSv1.2 +TLSv1.3 in Apache. If the server cannot "
            "do that, upgrade it or its TLS library."
        ),
        why_it_matters="SSL 3.0 is broken (POODLE) and prohibited by RFC 7568.",
    ),
    CheckSpec(
        "tls.protocol.tls1_0",
        Severity.MEDIUM,
        title="TLS 1.0 accepted",
        remediation=(
            "Disable TLS 1.0 and allow only TLS 1.2 and TLS 1.3, as in Mozilla's 'intermediate' "
            "configuration and ANSSI's recommendations for TLS. On IIS, disable the protocol in "
            "the SCHANNEL registry keys and restart. Check first that no old client that must keep "
            "working (legacy device, partner system) depends on it."
        ),
        why_it_matters=(
            "TLS 1.0 is deprecated by RFC 8996: it relies on weak constructions and current "
            "browsers no longer need it."
        ),
    ),
    CheckSpec(
        "tls.protocol.tls1_1",
        Severity.MEDIUM,
        title="TLS 1.1 accepted",
        remediation=(
            "Disable TLS 1.1 and allow only TLS 1.2 and TLS 1.3, as in Mozilla's 'intermediate' "
            "configuration and ANSSI's recommendations for TLS. On IIS, disable the protocol in "
            "the SCHANNEL registry keys and restart. Check first that no old client that must keep "
            "working (legacy device, partner system) depends on it."
        ),
        why_it_matters=(
            "TLS 1.1 is deprecated by RFC 8996 and no longer supported by current browsers."
        ),
    ),
    CheckSpec(
        "tls.protocol.no_tls1_3",
        Severity.INFO,
        title="TLS 1.3 not offered",
        remediation=(
            "Enable TLS 1.3 alongside TLS 1.2 (ssl_protocols TLSv1.2 TLSv1.3 in nginx, SSLProtocol "
            "-all +TLSv1.2 +TLSv1.3 in Apache). It needs OpenSSL 1.1.1 or later, or Windows Server "
            "2022 or later for IIS; upgrade the operating system if it is older."
        ),
        why_it_matters=(
            "TLS 1.3 is faster and removes the legacy options behind most attacks on TLS."
        ),
    ),
    CheckSpec(
        "tls.cipher.weak",
        Severity.HIGH,
        title="Weak cipher suites accepted",
        remediation=(
            "Restrict the cipher suites to strong AEAD suites with forward secrecy, for example by "
            "copying the cipher list of Mozilla's 'intermediate' configuration "
            "(ssl-config.mozilla.org) into ssl_ciphers (nginx) or SSLCipherSuite (Apache). On IIS, "
            "set the cipher suites through Group Policy or with the Disable-TlsCipherSuite "
            "PowerShell command. Reload the server, then scan again."
        ),
        why_it_matters=(
            "NULL, anonymous, EXPORT, RC4, DES and 3DES suites can be broken or give no protection "
            "at all, so traffic can be read or altered."
        ),
    ),
    CheckSpec(
        "tls.cipher.no_forward_secrecy",
        Severity.MEDIUM,
        title="Cipher suites without forward secrecy accepted",
        remediation=(
            "Keep only suites with ECDHE (or DHE) key exchange and remove the suites with static "
            "RSA key exchange (TLS_RSA_WITH_*). Mozilla's 'intermediate' cipher list meets this "
            "rule. TLS 1.3 suites always provide forward secrecy."
        ),
        why_it_matters=(
            "Without (EC)DHE key exchange, anyone who later obtains the server's private key can "
            "decrypt recorded traffic."
        ),
    ),
    CheckSpec(
        "tls.dh.weak",
        Severity.MEDIUM,
        title="Weak Diffie-Hellman parameters (under 2048 bits)",
        remediation=(
            "Use a Diffie-Hellman group of at least 2048 bits, preferably the ffdhe2048 group of "
            "RFC 7919 (Mozilla provides it as a ready-made file), set with ssl_dhparam in nginx or "
            "SSLOpenSSLConfCmd DHParameters in Apache. Alternatively, remove the DHE suites and "
            "keep only ECDHE suites."
        ),
        why_it_matters=(
            "Small Diffie-Hellman groups can be broken by well-resourced attackers (Logjam), which "
            "exposes the session keys."
        ),
    ),
    CheckSpec(
        "tls.cert.expired",
        Severity.HIGH,
        title="Certificate expired",
        remediation=(
            "Renew the certificate and install it with its full chain, then reload the server. "
            "Automate renewal (ACME with certbot or similar) and monitor expiry dates so that it "
            "does not happen again."
        ),
        why_it_matters=(
            "Browsers block the site with an error, and users who learn to click through warnings "
            "become easy targets for interception."
        ),
    ),
    CheckSpec(
        "tls.cert.not_yet_valid",
        Severity.HIGH,
        title="Certificate not yet valid",
        remediation=(
            "Check the server's clock (use NTP) and the certificate's validity dates. If the "
            "certificate was issued with a start date in the future, install a certificate that is "
            "valid now, with its full chain, and reload the server."
        ),
        why_it_matters=(
            "Clients reject the certificate, so the service is unreachable or users are taught to "
            "ignore warnings."
        ),
    ),
    CheckSpec(
        "tls.cert.expiring_soon",
        Severity.MEDIUM,
        title="Certificate expires soon",
        remediation=(
            "Renew the certificate before its expiry date and install it with its full chain. "
            "Better, automate renewal with an ACME client (certbot, acme.sh, win-acme on IIS) so "
            "that certificates are renewed well ahead of time without manual work."
        ),
        why_it_matters=(
            "If it is not renewed in time, the service will become unreachable or show security "
            "warnings."
        ),
    ),
    CheckSpec(
        "tls.cert.self_signed",
        Severity.HIGH,
        title="Self-signed certificate",
        remediation=(
            "Replace the self-signed certificate with one issued by a publicly trusted certificate "
            "authority (free from Let's Encrypt through ACME). For purely internal services, use "
            "the organisation's internal certificate authority and do not expose the service to "
            "the internet."
        ),
        why_it_matters=(
            "Clients cannot verify whom they are talking to, so an attacker can impersonate the "
            "server, and users get used to clicking through warnings."
        ),
    ),
    CheckSpec(
        "tls.cert.untrusted",
        Severity.HIGH,
        title="Certificate not issued by a trusted authority",
        remediation=(
            "Obtain a certificate from a publicly trusted certificate authority and install it "
            "with its intermediate certificates. If the certificate comes from a private "
            "authority, use it only for non-public services whose clients have that authority "
            "installed."
        ),
        why_it_matters=(
            "Clients cannot verify the server's identity, which allows impersonation and teaches "
            "users to ignore warnings."
        ),
    ),
    CheckSpec(
        "tls.cert.hostname_mismatch",
        Severity.HIGH,
        title="Certificate does not match the host name",
        remediation=(
            "Have a certificate issued whose Subject Alternative Name list includes this exact "
            "name (or a matching wildcard), and make sure the server presents it for this name "
            "(server_name in nginx, ServerName/ServerAlias in Apache, the SNI binding in IIS). If "
            "the name is no longer used, remove it from DNS."
        ),
        why_it_matters=(
            "Browsers warn or refuse to connect, because the certificate was issued for a "
            "different name."
        ),
    ),
    CheckSpec(
        "tls.cert.incomplete_chain",
        Severity.MEDIUM,
        title="Incomplete certificate chain",
        remediation=(
            "Configure the server to send the leaf certificate followed by its issuer's "
            "intermediate certificates (the fullchain.pem file with certbot). In nginx, "
            "ssl_certificate must point to the full chain; in Apache 2.4.8 and later, "
            "SSLCertificateFile can hold the chain; on IIS, import the intermediates into the "
            "Intermediate Certification Authorities store."
        ),
        why_it_matters=(
            "Some clients (mobile devices, APIs, older systems) cannot build the chain to a "
            "trusted root and refuse the connection."
        ),
    ),
    CheckSpec(
        "tls.cert.weak_key",
        Severity.HIGH,
        title="Certificate key too short",
        remediation=(
            "Generate a new private key of at least 2048 bits for RSA (ANSSI recommends 3072 bits "
            "for use beyond 2030) or an ECDSA P-256 key, obtain a new certificate for it and "
            "install it. Revoke the old certificate."
        ),
        why_it_matters=(
            "A short key can be factored or broken, which lets an attacker impersonate the server."
        ),
    ),
    CheckSpec(
        "tls.cert.weak_signature",
        Severity.HIGH,
        title="Certificate signed with a weak hash algorithm (MD5 or SHA-1)",
        remediation=(
            "Replace the certificate with one signed with SHA-256 or stronger. Every current "
            "certificate authority issues such certificates; if an internal authority produced "
            "this one, fix its signing configuration too."
        ),
        why_it_matters=(
            "MD5 and SHA-1 collisions are practical, so such signatures can be forged; browsers "
            "reject them."
        ),
    ),
    CheckSpec(
        "tls.vuln.heartbleed",
        Severity.CRITICAL,
        title="Vulnerable to Heartbleed (CVE-2014-0160)",
        remediation=(
            "Upgrade OpenSSL (and every product that bundles it) to a fixed version and restart "
            "the services. Then treat the private key as compromised: generate a new key, obtain a "
            "new certificate, revoke the old one, have users change their passwords and "
            "invalidate open sessions."
        ),
        why_it_matters=(
            "Anyone can read the server's memory, including private keys, passwords and session "
            "cookies."
        ),
    ),
    CheckSpec(
        "tls.vuln.robot",
        Severity.HIGH,
        title="Vulnerable to ROBOT",
        remediation=(
            "Apply the vendor's fix for ROBOT (many load balancers and TLS appliances were "
            "affected) and disable the suites with RSA key exchange (TLS_RSA_WITH_*), keeping only "
            "ECDHE suites. Mozilla's 'intermediate' configuration contains none of them."
        ),
        why_it_matters=(
            "Through an RSA padding oracle, an attacker can decrypt recorded traffic or sign "
            "messages with the server's key."
        ),
    ),
    CheckSpec(
        "tls.vuln.ccs_injection",
        Severity.HIGH,
        title="Vulnerable to OpenSSL CCS injection (CVE-2014-0224)",
        remediation=(
            "Upgrade OpenSSL to a fixed version (the flaw dates from 2014, so the system is far "
            "behind on updates) and restart the services that use it. Check the rest of the "
            "system for missing updates as well."
        ),
        why_it_matters=(
            "An attacker on the network path can force weak keys, then read or alter the traffic."
        ),
    ),
    CheckSpec(
        "tls.renegotiation.insecure",
        Severity.MEDIUM,
        title="Insecure TLS renegotiation allowed",
        remediation=(
            "Upgrade the TLS library so that it supports secure renegotiation (RFC 5746), and "
            "disable client-initiated renegotiation. Current versions of OpenSSL, nginx and Apache "
            "do this by default; older versions must be upgraded."
        ),
        why_it_matters=(
            "Insecure renegotiation lets an attacker inject data into a session, and "
            "client-initiated renegotiation can be abused for denial of service."
        ),
    ),
    CheckSpec(
        "tls.compression",
        Severity.MEDIUM,
        title="TLS compression enabled (CRIME)",
        remediation=(
            "Disable compression at the TLS level. Current OpenSSL versions disable it; in Apache "
            "set SSLCompression off, and upgrade the servers whose TLS library still enables it."
        ),
        why_it_matters=(
            "TLS compression lets an attacker recover secrets such as session cookies (the CRIME "
            "attack)."
        ),
    ),
    # --- HTTP -----------------------------------------------------------------
    CheckSpec(
        "http.no_https_redirect",
        Severity.MEDIUM,
        title="HTTP does not redirect to HTTPS",
        remediation=(
            "Answer every plain HTTP request with a permanent redirect (301) to the same URL over "
            "HTTPS, on the same host name, then enable HSTS. Mozilla's web security guidelines "
            "recommend this."
        ),
        why_it_matters=(
            "Visitors who type the address or follow old links stay on unencrypted HTTP, where "
            "pages and logins can be intercepted."
        ),
    ),
    CheckSpec(
        "http.hsts.missing",
        Severity.MEDIUM,
        title="No HSTS header (Strict-Transport-Security)",
        remediation=(
            "Send the header Strict-Transport-Security: max-age=31536000; includeSubDomains on "
            "every HTTPS response (RFC 6797). Start with a shorter max-age if you are not sure "
            "that every subdomain supports HTTPS, then raise it to at least six months. Do not "
            "send it over plain HTTP, where it is ignored."
        ),
        why_it_matters=(
            "Without HSTS, browsers may still connect over HTTP first, which lets an attacker "
            "strip HTTPS away (RFC 6797)."
        ),
    ),
    CheckSpec(
        "http.hsts.short_max_age",
        Severity.LOW,
        title="HSTS max-age too short",
        remediation=(
            "Raise max-age in the Strict-Transport-Security header to at least 15552000 seconds "
            "(six months); one year (31536000) is common and recommended by Mozilla."
        ),
        why_it_matters=(
            "With a short max-age, browsers quickly forget the HTTPS-only policy, which leaves "
            "room for downgrade attacks."
        ),
    ),
    CheckSpec(
        "http.csp.missing",
        Severity.LOW,
        title="No Content Security Policy",
        remediation=(
            "Define a Content-Security-Policy header listing the sources the site really uses, "
            "starting for example from default-src 'self'; object-src 'none'; frame-ancestors "
            "'self'; base-uri 'self'. Test it first with Content-Security-Policy-Report-Only to see "
            "what it would block, then enforce it."
        ),
        why_it_matters=(
            "A Content Security Policy limits the damage of cross-site scripting by telling "
            "browsers which scripts may run."
        ),
    ),
    CheckSpec(
        "http.csp.unsafe",
        Severity.LOW,
        title="Content Security Policy allows unsafe sources",
        remediation=(
            "Remove 'unsafe-inline', 'unsafe-eval' and * from script-src and default-src. Move "
            "inline scripts into files served by the site, or allow specific ones with nonces or "
            "hashes, and list the exact external hosts that are needed."
        ),
        why_it_matters=(
            "'unsafe-inline', 'unsafe-eval' or a wildcard in script-src or default-src let injected "
            "scripts run, which defeats the purpose of the policy."
        ),
    ),
    CheckSpec(
        "http.frame_options.missing",
        Severity.LOW,
        title="No clickjacking protection (X-Frame-Options or frame-ancestors)",
        remediation=(
            "Add the header X-Frame-Options: SAMEORIGIN (or DENY), or a Content-Security-Policy "
            "with frame-ancestors 'self', which modern browsers prefer. Allow other origins only "
            "if they really need to embed the site."
        ),
        why_it_matters=(
            "Other sites can embed the pages in a frame and trick users into clicking hidden "
            "buttons (clickjacking)."
        ),
    ),
    CheckSpec(
        "http.content_type_options.missing",
        Severity.LOW,
        title="No X-Content-Type-Options: nosniff header",
        remediation=(
            "Add the header X-Content-Type-Options: nosniff to every response, and make sure the "
            "server sends the right Content-Type for each file."
        ),
        why_it_matters=(
            "Without nosniff, browsers may guess a file's type and run content uploaded by users "
            "as a script."
        ),
    ),
    CheckSpec(
        "http.referrer_policy.missing",
        Severity.INFO,
        title="No Referrer-Policy header",
        remediation=(
            "Add the header Referrer-Policy: strict-origin-when-cross-origin (or no-referrer for "
            "sensitive applications), so that other sites receive at most the origin, not the "
            "full address."
        ),
        why_it_matters=(
            "Full URLs, which may contain tokens or personal data, can leak to other sites "
            "through the Referer header."
        ),
    ),
    CheckSpec(
        "http.version_disclosed",
        Severity.LOW,
        title="HTTP headers disclose software versions",
        remediation=(
            "Remove versions from the response headers: server_tokens off in nginx, ServerTokens "
            "Prod and ServerSignature Off in Apache, expose_php = Off in PHP, removeServerHeader "
            "and enableVersionHeader=false in IIS/ASP.NET. Keep the software up to date: hiding "
            "the version fixes nothing by itself."
        ),
        why_it_matters=(
            "Version numbers in Server, X-Powered-By or X-AspNet-Version tell attackers which "
            "known vulnerabilities to try."
        ),
    ),
    CheckSpec(
        "http.cookie.insecure",
        Severity.MEDIUM,
        title="Cookie set without the Secure attribute",
        remediation=(
            "Set the Secure attribute on every cookie issued by an HTTPS site, in the application "
            "or framework settings (for example session.cookie_secure = 1 in PHP, requireSSL in "
            "ASP.NET). As a stopgap, the web server or reverse proxy can add it "
            "(proxy_cookie_flags in nginx, Header edit Set-Cookie in Apache)."
        ),
        why_it_matters=(
            "The browser may send the cookie over plain HTTP, where it can be captured and the "
            "session hijacked."
        ),
    ),
    CheckSpec(
        "http.cookie.no_httponly",
        Severity.LOW,
        title="Session cookie without the HttpOnly attribute",
        remediation=(
            "Set the HttpOnly attribute on session and authentication cookies (for example "
            "session.cookie_httponly = 1 in PHP, httpOnlyCookies in ASP.NET). Also consider "
            "SameSite=Lax or Strict to limit cross-site request forgery."
        ),
        why_it_matters=(
            "Scripts injected into the page (XSS) can read the session cookie and take over the "
            "session."
        ),
    ),
    CheckSpec(
        "http.cors.permissive",
        Severity.MEDIUM,
        title="Permissive CORS policy",
        remediation=(
            "Do not copy the request's Origin header into Access-Control-Allow-Origin. Compare it "
            "with an explicit list of trusted origins, and send Access-Control-Allow-Credentials: "
            "true only for those. Never combine * with responses that depend on cookies or "
            "authentication."
        ),
        why_it_matters=(
            "Any website a user visits can send authenticated requests to this application and "
            "read the answers, including personal data."
        ),
    ),
    CheckSpec(
        "http.trace_enabled",
        Severity.LOW,
        title="HTTP TRACE method enabled",
        remediation=(
            "Disable the TRACE method: TraceEnable Off in Apache, a request filtering rule that "
            "denies the TRACE verb in IIS; in other servers and application frameworks, reject "
            "TRACE in their settings. nginx refuses TRACE by itself."
        ),
        why_it_matters=(
            "TRACE echoes the request back, which can expose cookies and authentication headers "
            "(cross-site tracing); it is never needed in production."
        ),
    ),
    CheckSpec(
        "http.security_txt.missing",
        Severity.LOW,
        title="No security.txt file",
        remediation=(
            "Publish /.well-known/security.txt over HTTPS on the domain's main web site, with at "
            "least a Contact field (an email address or web page of the security team) and an "
            "Expires field less than a year ahead, as defined by RFC 9116. Add "
            "Preferred-Languages: fr, en and review the file before it expires."
        ),
        why_it_matters=(
            "Researchers and the CERT who find a vulnerability cannot easily find whom to warn "
            "(RFC 9116)."
        ),
    ),
    CheckSpec(
        "http.security_txt.expired",
        Severity.LOW,
        title="security.txt has expired",
        remediation=(
            "Check that the contacts in security.txt are still correct and set a new Expires date, "
            "less than a year ahead (RFC 9116). Put a reminder in the team's calendar to renew it "
            "before it expires again."
        ),
        why_it_matters=(
            "An expired security.txt tells researchers that its contacts may be out of date, so "
            "reports may not reach you."
        ),
    ),
    CheckSpec(
        "http.directory_listing",
        Severity.MEDIUM,
        title="Directory listing enabled",
        remediation=(
            "Disable automatic directory indexes: autoindex off in nginx, Options -Indexes in "
            "Apache, directory browsing disabled (directoryBrowse) in IIS. Then check what the "
            "directory contains and remove every file that should not be public."
        ),
        why_it_matters=(
            "Anyone can browse the files in the directory, including backups, configuration or "
            "documents not meant to be public."
        ),
    ),
    CheckSpec(
        "http.exposed.vcs",
        Severity.HIGH,
        title="Source code repository (.git or .svn) exposed",
        remediation=(
            "Block access to /.git and /.svn on the web server (and to every path starting with a "
            "dot, except /.well-known), and better, deploy without the repository metadata. Then "
            "search the history for secrets (database passwords, API keys) and change them: they "
            "must be considered leaked."
        ),
        why_it_matters=(
            "The whole source code and its history can be downloaded, often with passwords, keys "
            "and internal addresses."
        ),
    ),
    CheckSpec(
        "http.exposed.env_file",
        Severity.CRITICAL,
        title="Configuration file with secrets exposed (.env or similar)",
        remediation=(
            "Remove the file from the web root or block access to it at once, and treat every "
            "secret it contains as compromised: change the database passwords, revoke the API "
            "keys and renew the application's secret keys. Keep configuration outside the "
            "document root, and search the logs for downloads of the file. Report the exposure to "
            "the CERT."
        ),
        why_it_matters=(
            "Such files usually hold database passwords, API keys and application secrets, which "
            "give direct access to data and systems."
        ),
    ),
    CheckSpec(
        "http.exposed.server_status",
        Severity.MEDIUM,
        title="Server status page publicly accessible",
        remediation=(
            "Restrict the status page to localhost or to the monitoring system's address (Require "
            "local or Require ip in Apache, allow and deny in nginx), or disable it if nobody uses "
            "it."
        ),
        why_it_matters=(
            "Status pages reveal internal addresses, requested URLs (sometimes with tokens), "
            "client IP addresses and load."
        ),
    ),
    CheckSpec(
        "http.exposed.phpinfo",
        Severity.MEDIUM,
        title="phpinfo() page publicly accessible",
        remediation=(
            "Delete the page from the server: it is a debugging aid with no place in production. "
            "If it displayed environment variables holding passwords or keys, change them."
        ),
        why_it_matters=(
            "phpinfo() reveals versions, file paths, configuration and sometimes environment "
            "variables holding secrets."
        ),
    ),
    CheckSpec(
        "http.exposed.admin_panel",
        Severity.MEDIUM,
        title="Administration panel publicly accessible",
        remediation=(
            "Remove the panel if it is not used. Otherwise restrict it, at the web server, to the "
            "administrators' addresses or a VPN, require strong authentication and keep it up to "
            "date. ANSSI recommends administering systems only from a dedicated administration "
            "network."
        ),
        why_it_matters=(
            "Panels such as phpMyAdmin, Adminer or the Tomcat manager are targeted by password "
            "guessing and known exploits, and give full control once breached."
        ),
    ),
    CheckSpec(
        "http.exposed.backup",
        Severity.HIGH,
        title="Backup or database dump downloadable",
        remediation=(
            "Remove the file from the web root and keep backups outside it, on a separate system. "
            "Search the logs for downloads; if the file holds personal data or passwords, treat "
            "the exposure as a data breach: change the credentials and inform the CERT and the "
            "data protection authority as the law requires."
        ),
        why_it_matters=(
            "Backups and dumps contain the site's source code, data and credentials, often with "
            "personal data."
        ),
    ),
    # --- DNS and mail domain --------------------------------------------------
    CheckSpec(
        "dns.axfr_open",
        Severity.HIGH,
        title="DNS zone transfer allowed to anyone",
        remediation=(
            "Allow zone transfers (AXFR) only to the secondary name servers, by IP address and "
            "ideally with TSIG keys: allow-transfer in BIND, an acl with action transfer in Knot, "
            "allow-axfr-ips in PowerDNS, the Zone Transfers tab in Windows DNS. Then review what "
            "the zone revealed."
        ),
        why_it_matters=(
            "Anyone can download the whole zone and learn every internal or forgotten host name, "
            "which maps out the attack surface."
        ),
    ),
    CheckSpec(
        "dns.dnssec.missing",
        Severity.LOW,
        title="DNS zone not signed with DNSSEC",
        remediation=(
            "Sign the zone with DNSSEC (automatic signing with dnssec-policy in BIND, "
            "dnssec-signing in Knot, or through your DNS provider), then publish the DS record in "
            "the parent zone through the registrar. Use a modern algorithm such as ECDSA P-256 "
            "(algorithm 13) and monitor signature expiry."
        ),
        why_it_matters=(
            "Without DNSSEC, resolvers cannot detect forged DNS answers, so users can be sent to a "
            "fake server."
        ),
    ),
    CheckSpec(
        "dns.spf.missing",
        Severity.MEDIUM,
        title="No SPF record",
        remediation=(
            "Publish a TXT record on the domain such as v=spf1 mx include:your-provider.example "
            "-all, listing every server that legitimately sends mail for the domain (RFC 7208). A "
            "domain that sends no mail should publish v=spf1 -all."
        ),
        why_it_matters=(
            "Without SPF, anyone can send email claiming to come from this domain, which helps "
            "phishing that impersonates the agency."
        ),
    ),
    CheckSpec(
        "dns.spf.permissive",
        Severity.HIGH,
        title="SPF record allows any sender (+all or ?all)",
        remediation=(
            "End the SPF record with -all (or ~all while you verify the list of senders) and list "
            "every legitimate sending server explicitly (RFC 7208)."
        ),
        why_it_matters=(
            "An SPF record ending in +all or ?all lets any server send mail for the domain, which "
            "makes it useless against spoofing."
        ),
    ),
    CheckSpec(
        "dns.dmarc.missing",
        Severity.MEDIUM,
        title="No DMARC record",
        remediation=(
            "Publish a TXT record at _dmarc.<domain>, starting with v=DMARC1; p=none; "
            "rua=mailto:<address> to collect reports, then move to p=quarantine and p=reject once "
            "legitimate mail passes SPF and DKIM (RFC 7489). Sign outgoing mail with DKIM as well."
        ),
        why_it_matters=(
            "Without DMARC, receiving servers do not know what to do with mail that fails the SPF "
            "and DKIM checks, and you get no reports of spoofing."
        ),
    ),
    CheckSpec(
        "dns.dmarc.policy_none",
        Severity.LOW,
        title="DMARC policy set to none (monitoring only)",
        remediation=(
            "Read the DMARC aggregate reports to confirm that legitimate senders pass SPF or DKIM, "
            "then raise the policy to p=quarantine and finally p=reject (RFC 7489). The expected "
            "target is at least quarantine."
        ),
        why_it_matters=(
            "With p=none, receivers deliver spoofed mail as usual; the policy only collects "
            "reports."
        ),
    ),
    CheckSpec(
        "dns.caa.missing",
        Severity.INFO,
        title="No CAA record",
        remediation=(
            "Publish CAA records naming the certificate authorities you use, for example CAA 0 "
            'issue "letsencrypt.org" (RFC 8659). Check that every authority you use is listed '
            "before publishing, or renewals will fail."
        ),
        why_it_matters=(
            "A CAA record limits which certificate authorities may issue certificates for the "
            "domain, which reduces the risk of mis-issuance."
        ),
    ),
    CheckSpec(
        "dns.dangling_cname",
        Severity.HIGH,
        title="CNAME points to a name that does not exist (subdomain takeover risk)",
        remediation=(
            "Delete the CNAME record if the service it points to is no longer used, or recreate "
            "the target resource if it is. Make the removal of DNS records part of the "
            "decommissioning of every hosted service."
        ),
        why_it_matters=(
            "If the target (a cloud service, an expired domain) can be claimed by someone else, "
            "they control the content served under your domain."
        ),
    ),
    CheckSpec(
        "dns.lame_delegation",
        Severity.MEDIUM,
        title="Lame delegation: a name server is not authoritative for the zone",
        remediation=(
            "Make the NS records in the parent zone (through the registrar) and in the zone itself "
            "list only servers that really serve the zone authoritatively. Either configure the "
            "zone on that server or remove it from the delegation."
        ),
        why_it_matters=(
            "Resolvers waste time on a server that does not answer properly, which slows the "
            "domain down or makes it unreachable, and that server could one day be taken over."
        ),
    ),
    CheckSpec(
        "dns.ns_unresolvable",
        Severity.HIGH,
        title="A name server's name does not resolve",
        remediation=(
            "Check the name server's domain at once: if it has expired or no longer exists, remove "
            "that name server from the delegation at the registrar and from the zone's NS records. "
            "Keep the domains used by name servers under the agency's control and renewed."
        ),
        why_it_matters=(
            "If the name server's domain has expired, anyone can register it and take over the "
            "resolution of your whole zone."
        ),
    ),
    # --- Scan problems --------------------------------------------------------
    CheckSpec(
        "scan.unreachable",
        Severity.INFO,
        title="Host did not answer",
        remediation=(
            "If the host has been retired, remove its name from DNS and from the registry. If it "
            "should be reachable, check that it is up and that no firewall silently drops the "
            "scanner's traffic; the CERT can give you its scanning addresses to allow."
        ),
        why_it_matters="Nothing could be checked, so the host's exposure is unknown.",
    ),
    CheckSpec(
        "scan.out_of_scope",
        Severity.INFO,
        title="Address outside the allowed scan scope",
        remediation=(
            "Check that the DNS record is correct: a public name pointing to a private address "
            "reveals internal addressing and is usually a mistake. If the address legitimately "
            "belongs to the agency, ask the CERT to add it to the scan scope."
        ),
        why_it_matters=(
            "The name points to an address the CERT may not scan (a private range or a provider "
            "outside the mandate), so it was not checked."
        ),
    ),
    CheckSpec(
        "scan.not_authorised",
        Severity.INFO,
        title="No valid scanning mandate",
        remediation=(
            "Renew or sign the scanning mandate with the CERT so that the agency's services can be "
            "checked again."
        ),
        why_it_matters=(
            "The agency's hosts were not scanned because no valid mandate covers them, so their "
            "exposure is unknown."
        ),
    ),
    CheckSpec(
        "scan.timeout",
        Severity.INFO,
        title="A scan probe timed out",
        remediation=(
            "No action is needed from the agency unless this repeats. If it does, look for rate "
            "limiting or filtering that slows the scanner down; the CERT can review the probe "
            "deadline for this host."
        ),
        why_it_matters=(
            "Part of the host could not be checked in time, so some findings may be missing."
        ),
    ),
    CheckSpec(
        "scan.error",
        Severity.INFO,
        title="A scan probe failed",
        remediation=(
            "No action is needed from the agency. The CERT reviews these errors; the evidence "
            "holds the details needed to investigate."
        ),
        why_it_matters=(
            "Part of the host could not be checked because of an unexpected error, so some "
            "findings may be missing."
        ),
    ),
)

CATALOGUE: dict[str, CheckSpec] = {spec.check_id: spec for spec in _SPECS}


class UnknownCheckError(KeyError):
    """A check ID that is not in the catalogue (a typo in code or configuration)."""


def spec_for(check_id: str) -> CheckSpec:
    try:
        return CATALOGUE[check_id]
    except KeyError:
        raise UnknownCheckError(check_id) from None


def checks_in(family: Family) -> list[CheckSpec]:
    return [spec for spec in _SPECS if spec.family is family]


# --- Remediation snippets -----------------------------------------------------

#: How each stack of ``remediation_snippets.toml`` is named to a reader, in the
#: order reports and emails show them. Configuration lines are not translated.
SNIPPET_STACKS: dict[str, str] = {
    "nginx": "nginx",
    "apache": "Apache httpd",
    "iis": "IIS",
    "php": "PHP (php.ini)",
    "openssh": "OpenSSH (sshd_config)",
    "vsftpd": "vsftpd",
    "postfix": "Postfix",
    "dovecot": "Dovecot",
    "redis": "Redis",
    "postgresql": "PostgreSQL",
    "mysql": "MySQL / MariaDB",
    "mongodb": "MongoDB",
    "elasticsearch": "Elasticsearch",
    "memcached": "memcached",
    "certbot": "certbot (Let's Encrypt)",
    "openssl": "OpenSSL",
    "bind": "BIND",
    "knot": "Knot DNS",
    "windows_dns": "Windows DNS",
    "zone": "DNS zone file",
    "security_txt": "security.txt",
}

_SNIPPETS_RESOURCE = ("data", "remediation_snippets.toml")


@cache
def _all_snippets() -> MappingProxyType[str, MappingProxyType[str, str]]:
    """The snippet file, parsed once; read-only so no caller can alter the cache."""
    text = resources.files("vigie").joinpath(*_SNIPPETS_RESOURCE).read_text(encoding="utf-8")
    parsed = tomllib.loads(text)
    return MappingProxyType(
        {
            check_id: MappingProxyType(_ordered_stacks(by_stack))
            for check_id, by_stack in parsed.items()
        }
    )


def _ordered_stacks(by_stack: dict[str, str]) -> dict[str, str]:
    # The file's order is an editing accident; readers get the stacks in SNIPPET_STACKS order.
    rank = {stack: index for index, stack in enumerate(SNIPPET_STACKS)}
    ordered = sorted(by_stack.items(), key=lambda item: rank.get(item[0], len(rank)))
    return {stack: snippet.strip("\n") + "\n" for stack, snippet in ordered}


def remediation_snippets(check_id: str) -> dict[str, str]:
    """Configuration snippets fixing ``check_id``, keyed by stack (see ``SNIPPET_STACKS``).

    Empty when no configuration line fixes the check (for example an expired
    domain). Raises ``UnknownCheckError`` for an ID that is not in the catalogue.
    """
    spec_for(check_id)
    return dict(_all_snippets().get(check_id, {}))
