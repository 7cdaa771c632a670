#compdef certkeeper

autoload -U is-at-least

_certkeeper() {
    typeset -A opt_args
    typeset -a _arguments_options
    local ret=1

    if is-at-least 5.2; then
        _arguments_options=(-s -S -C)
    else
        _arguments_options=(-s -C)
    fi

    local context curcontext="$curcontext" state line
    _arguments "${_arguments_options[@]}" : \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
":: :_certkeeper_commands" \
"*::: :->certkeeper" \
&& ret=0
    case $state in
    (certkeeper)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:certkeeper-command-$line[1]:"
        case $line[1] in
            (init)
_arguments "${_arguments_options[@]}" : \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(import)
_arguments "${_arguments_options[@]}" : \
'--store=[Where certificates go]:STORE:((auto\:"By certificate type"
personal\:"Certificates with their private key"
root\:"Trusted root CAs"
intermediate\:"Intermediate CAs"
other\:"End-entity certificates without a key"
disallowed\:"Explicitly distrusted"))' \
'--name=[Friendly name for the certificate with the private key (or the only certificate)]:NAME:_default' \
'--password-env=[Read the password from this environment variable]:VAR:_default' \
'--password-file=[Read the password from the first line of this file]:FILE:_files' \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--no-roots[Do not add root CAs (they are listed as skipped)]' \
'--non-exportable[Mark the private keys non-exportable\: \`export --format pfx\` will refuse them]' \
'--password-stdin[Read the password from standard input (up to the first newline)]' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
'*::files -- Files to import:_files' \
&& ret=0
;;
(list)
_arguments "${_arguments_options[@]}" : \
'--store=[Only this store]:STORE:((personal\:"Certificates with their private key"
root\:"Trusted root CAs"
intermediate\:"Intermediate CAs"
other\:"End-entity certificates without a key"
disallowed\:"Explicitly distrusted"))' \
'--expiring=[Only certificates that expire within this many days (or have expired)]:DAYS:_default' \
'--search=[Only certificates with a friendly name, export name, or "Issued to" name (a subject CN or DNS name, any case) that begins with TEXT]:TEXT:_default' \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(show)
_arguments "${_arguments_options[@]}" : \
'--socket=[The agent'\''s socket, asked when this user cannot open the home \[env\: CERTKEEPER_SOCKET\]]:PATH:_files' \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':reference -- The entry\: thumbprint (or ≥ 8-digit prefix), friendly name, export name, or subject\:TEXT:_default' \
&& ret=0
;;
(path)
_arguments "${_arguments_options[@]}" : \
'--at=[Validate at this time instead of now (2027-01-01 or RFC 3339)]:TIME:_default' \
'--purpose=[What the certificate must be good for]:PURPOSE:((client-auth\:"TLS client authentication (clientAuth EKU)"
server-auth\:"TLS server authentication (serverAuth EKU)"
any\:"No extended key usage requirement"))' \
'--socket=[The agent'\''s socket, asked when this user cannot open the home \[env\: CERTKEEPER_SOCKET\]]:PATH:_files' \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
':reference -- The entry:_default' \
&& ret=0
;;
(move)
_arguments "${_arguments_options[@]}" : \
'--to=[The store to move it to]:TO:((personal\:"Certificates with their private key"
root\:"Trusted root CAs"
intermediate\:"Intermediate CAs"
other\:"End-entity certificates without a key"
disallowed\:"Explicitly distrusted"))' \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
':reference -- The entry:_default' \
&& ret=0
;;
(remove)
_arguments "${_arguments_options[@]}" : \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':reference -- The entry:_default' \
&& ret=0
;;
(export)
_arguments "${_arguments_options[@]}" : \
'--format=[Output format]:FORMAT:((der\:"Binary certificate (.cer/.der), the Windows default"
pem\:"Base-64 text (.pem/.crt)"
p7b\:"PKCS#7 certificate bundle (.p7b)"
pfx\:"PKCS#12 with the private key (.pfx); needs a password option"))' \
'(--as)--out=[Where to write (default\: standard output)]:PATH:_files' \
'--as=[Write the DER to <export_dir>/NAME and record NAME as the export name]:NAME:_default' \
'--password-env=[Read the password from this environment variable]:VAR:_default' \
'--password-file=[Read the password from the first line of this file]:FILE:_files' \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--chain[Include the issuing CAs found in the home (pem, p7b, pfx)]' \
'--force[With --as\: replace a file that holds another certificate]' \
'--legacy[For pfx\: 3DES and SHA-1 MAC, for Windows Server 2016 and older and Java 8]' \
'--password-stdin[Read the password from standard input (up to the first newline)]' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
':reference -- The entry:_default' \
&& ret=0
;;
(grant)
_arguments "${_arguments_options[@]}" : \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
':reference -- The entry:_default' \
'*::principals -- Who may use the key:_default' \
&& ret=0
;;
(revoke)
_arguments "${_arguments_options[@]}" : \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':reference -- The entry:_default' \
'*::principals -- Whose permission ends:_default' \
&& ret=0
;;
(acl)
_arguments "${_arguments_options[@]}" : \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':reference -- The entry:_default' \
&& ret=0
;;
(agent)
_arguments "${_arguments_options[@]}" : \
'--socket=[The socket \[env\: CERTKEEPER_SOCKET; default\: /run/certkeeper/agent.sock for a root-owned home, else \$XDG_RUNTIME_DIR/certkeeper/agent.sock\]]:PATH:_files' \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(keycheck)
_arguments "${_arguments_options[@]}" : \
'--socket=[The agent'\''s socket \[env\: CERTKEEPER_SOCKET\]]:PATH:_files' \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
':reference -- The entry:_default' \
&& ret=0
;;
(bind)
_arguments "${_arguments_options[@]}" : \
'--cert=[The client certificate (a REF)]:REF:_default' \
'--upstream=[The upstream base URL (https\://...)]:URL:_default' \
'--listen=[Where the agent relays from\: a loopback address (127.0.0.1\:PORT) or unix\:/ABSOLUTE/PATH]:ADDR:_default' \
'--server-ca=[How to verify the upstream\: root (the home'\''s root store), system, or a REF]:CA:_default' \
'*--allow=[Only these principals (user\:NAME, group\:NAME, uid\:N, gid\:N) may use the binding, among those the key'\''s ACL admits (default\: whom the ACL admits)]:PRINCIPAL:_default' \
'--proxy=[Reach the upstream through this forward proxy (HTTP CONNECT)\: http\://\[user@\]host\:port. Default\: the home'\''s egress_proxy setting. The user'\''s password is stored sealed with \`certkeeper config egress_proxy_password --password-env VAR --proxy URL\`]:URL:_default' \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--legacy-tls[The upstream is on an old TLS stack\: also accept TLS 1.0 and 1.1, RSA key exchange and CBC suites, and a server certificate that names its host only in its subject CN (no subjectAltName). The same trust anchors are used; \`certkeeper doctor\` warns about every binding that has it]' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
':name -- The binding'\''s name:_default' \
&& ret=0
;;
(unbind)
_arguments "${_arguments_options[@]}" : \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':name -- The binding'\''s name:_default' \
&& ret=0
;;
(bindings)
_arguments "${_arguments_options[@]}" : \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(request)
_arguments "${_arguments_options[@]}" : \
'(--binding)--cert=[The client certificate\: a REF, or the certificate'\''s file (PEM or DER) whose entry in the home is used]:REF|FILE:_default' \
'--binding=[Use a binding'\''s certificate, upstream and server trust]:NAME:_default' \
'-X+[The method (default GET, or POST with -d)]:METHOD:_default' \
'--request=[The method (default GET, or POST with -d)]:METHOD:_default' \
'*-H+[A header, "Name\: value" (repeatable)]:HEADER:_default' \
'*--header=[A header, "Name\: value" (repeatable)]:HEADER:_default' \
'-d+[The body, or @FILE to read it from a file]:DATA:_default' \
'--data=[The body, or @FILE to read it from a file]:DATA:_default' \
'--soap-action=[SOAP 1.1\: POST with Content-Type text/xml and this SOAPAction]:ACTION:_default' \
'--server-ca=[How to verify the server\: root (the home'\''s root store), system, a REF or a CA file]:CA:_default' \
'(--server-ca)--cacert=[Verify the server with the CA certificates in this file (as --server-ca FILE)]:FILE:_files' \
'-o+[Write the body (and with -i the head) to this file instead of stdout]:FILE:_files' \
'--output=[Write the body (and with -i the head) to this file instead of stdout]:FILE:_files' \
'-m+[Give up when the whole call takes longer than this (seconds, e.g. 30 or 2.5)]:SECS:_default' \
'--max-time=[Give up when the whole call takes longer than this (seconds, e.g. 30 or 2.5)]:SECS:_default' \
'--connect-timeout=[Give up when connecting (TCP and TLS) takes longer than this (seconds)]:SECS:_default' \
'--socket=[The agent'\''s socket \[env\: CERTKEEPER_SOCKET\]]:PATH:_files' \
'-x+[Go through this forward proxy (HTTP CONNECT; the TLS session runs end to end through it)\: http\://\[user@\]host\[\:port\] (port 1080 by default), "" for none. Default, as curl\: https_proxy, HTTPS_PROXY, all_proxy, ALL_PROXY (where, as with curl, http\://user\:password@host\:port is accepted; never here)]:URL:_default' \
'--proxy=[Go through this forward proxy (HTTP CONNECT; the TLS session runs end to end through it)\: http\://\[user@\]host\[\:port\] (port 1080 by default), "" for none. Default, as curl\: https_proxy, HTTPS_PROXY, all_proxy, ALL_PROXY (where, as with curl, http\://user\:password@host\:port is accepted; never here)]:URL:_default' \
'--noproxy=[Hosts reached without the proxy, as NO_PROXY (default\: no_proxy, NO_PROXY)\: comma-separated host names (which match their subdomains too), IP addresses and ranges (10.0.0.0/8), or * for all]:LIST:_default' \
'--proxy-password-env=[The proxy user'\''s password, from this environment variable (default\: the one the home keeps for that proxy and user, for the home'\''s owner)]:VAR:_default' \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--soap12[SOAP 1.2\: Content-Type application/soap+xml (with --soap-action as its action)]' \
'-i[Print the response status line and headers before the body]' \
'--include[Print the response status line and headers before the body]' \
'-v[Show TLS details, the certificates and the exchange on stderr]' \
'--verbose[Show TLS details, the certificates and the exchange on stderr]' \
'-f[Exit 1 when the upstream answers with an HTTP error (400 or more)]' \
'--fail[Exit 1 when the upstream answers with an HTTP error (400 or more)]' \
'-k[Do not verify the server'\''s certificate at all (says so loudly)]' \
'--insecure[Do not verify the server'\''s certificate at all (says so loudly)]' \
'--legacy-tls[The partner is on an old TLS stack\: also accept TLS 1.0 and 1.1, RSA key exchange and CBC suites, and a server certificate that names its host only in its subject CN. The same trust anchors are used. (A binding'\''s --legacy-tls applies to request --binding too.)]' \
'-s[No notes on stderr (such as the upstream'\''s error status); errors are still shown]' \
'--silent[No notes on stderr (such as the upstream'\''s error status); errors are still shown]' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
':url -- The URL (https\://...), or a path relative to --binding'\''s upstream:_default' \
&& ret=0
;;
(doctor)
_arguments "${_arguments_options[@]}" : \
'--at=[Check as of this time (2027-01-01 or RFC 3339), e.g. ahead of an expiry]:TIME:_default' \
'--socket=[The agent'\''s socket \[env\: CERTKEEPER_SOCKET\]]:PATH:_files' \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--online[Also make a TLS handshake with each binding'\''s upstream]' \
'(--at --online)--fleet[Instead\: check every front-end of this home'\''s environment (alive, on the latest generation, no failing checks), naming each that is not]' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
'::reference -- Only this entry (and the bindings that use it):_default' \
&& ret=0
;;
(fleet)
_arguments "${_arguments_options[@]}" : \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
":: :_certkeeper__subcmd__fleet_commands" \
"*::: :->fleet" \
&& ret=0

    case $state in
    (fleet)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:certkeeper-fleet-command-$line[1]:"
        case $line[1] in
            (init)
_arguments "${_arguments_options[@]}" : \
'--etcd=[etcd endpoints, comma-separated (https\://HOST\:PORT; http\:// for tests)]:URLS:_default' \
'--env=[The environment'\''s name]:NAME:_default' \
'--etcd-cert=[For https etcd\: the client certificate (with its key in this home) presented to etcd; etcd'\''s CA must be in the root store. It is never published]:REF:_default' \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(join)
_arguments "${_arguments_options[@]}" : \
'--etcd=[etcd endpoints, comma-separated]:URLS:_default' \
'--env=[The environment'\''s name]:NAME:_default' \
'--node=[This front-end'\''s name (default\: the host name)]:NAME:_default' \
'--etcd-cert=[For https etcd\: this front-end'\''s client certificate for etcd (REF)]:REF:_default' \
'--admin-fingerprint=[Refuse the environment unless its administrator key has this fingerprint (what fleet init printed)]:FP:_default' \
'--listen-host=[Serve the published bindings on this loopback address instead of theirs (several front-ends on one machine, e.g. 127.0.0.2)]:IP:_default' \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(approve)
_arguments "${_arguments_options[@]}" : \
'--fingerprint=[The fingerprint \`fleet join\` printed on it]:FP:_default' \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':node -- The front-end'\''s name:_default' \
&& ret=0
;;
(remove)
_arguments "${_arguments_options[@]}" : \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':node -- The front-end'\''s name:_default' \
&& ret=0
;;
(publish)
_arguments "${_arguments_options[@]}" : \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(diff)
_arguments "${_arguments_options[@]}" : \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(status)
_arguments "${_arguments_options[@]}" : \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_certkeeper__subcmd__fleet__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:certkeeper-fleet-help-command-$line[1]:"
        case $line[1] in
            (init)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(join)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(approve)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(remove)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(publish)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(diff)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(status)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
;;
(demo)
_arguments "${_arguments_options[@]}" : \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(completions)
_arguments "${_arguments_options[@]}" : \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':shell -- The shell:(bash elvish fish powershell zsh)' \
&& ret=0
;;
(man)
_arguments "${_arguments_options[@]}" : \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
&& ret=0
;;
(config)
_arguments "${_arguments_options[@]}" : \
'--password-env=[egress_proxy_password only\: read the password from this environment variable]:VAR:_default' \
'--proxy=[egress_proxy_password only\: the proxy URL (with its user) the password is for (default\: the egress_proxy setting)]:URL:_default' \
'--home=[The home directory \[env\: CERTKEEPER_HOME; default\: /var/lib/certkeeper for root, else \$XDG_DATA_HOME/certkeeper\]]:DIR:_files' \
'--json[Print one JSON document on stdout instead of text]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
'::key -- The setting:_default' \
'::value -- Its new value:_default' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_certkeeper__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:certkeeper-help-command-$line[1]:"
        case $line[1] in
            (init)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(import)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(list)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(show)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(path)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(move)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(remove)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(export)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(grant)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(revoke)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(acl)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(agent)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(keycheck)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(bind)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(unbind)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(bindings)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(request)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(doctor)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(fleet)
_arguments "${_arguments_options[@]}" : \
":: :_certkeeper__subcmd__help__subcmd__fleet_commands" \
"*::: :->fleet" \
&& ret=0

    case $state in
    (fleet)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:certkeeper-help-fleet-command-$line[1]:"
        case $line[1] in
            (init)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(join)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(approve)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(remove)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(publish)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(diff)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(status)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
(demo)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(completions)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(man)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(config)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
}

(( $+functions[_certkeeper_commands] )) ||
_certkeeper_commands() {
    local commands; commands=(
'init:Create the home (idempotent)\: database, master key (mode 0600), settings' \
'import:Import certificates and keys from PEM, DER, PKCS#7 (.p7b) or PKCS#12 (.pfx) files' \
'list:List entries\: store, name, subject, expiry, whether the key is present' \
'show:Show one certificate'\''s details, as the Windows certificate dialog does' \
'path:Show the certification path (root first) and whether it is valid, with the fix' \
'move:Move an entry to another store (the MMC'\''s drag between folders)' \
'remove:Delete an entry, with its private key and key permissions' \
'export:Export a certificate\: public part as DER by default; PEM, PKCS#7, or .pfx with the key' \
'grant:Allow users or groups to use an entry'\''s private key (the MMC'\''s "Manage private keys")' \
'revoke:Take back the use of an entry'\''s private key' \
'acl:Show who may use an entry'\''s private key' \
'agent:Run the key isolation agent (foreground)\: the one process that uses private keys' \
'keycheck:Check, as the calling user, that the agent lets you sign with a key' \
'bind:Bind an upstream web service to a client certificate; with --listen the agent relays plain HTTP from that loopback address (or Unix socket) to the upstream over mutual TLS' \
'unbind:Delete a binding (the agent stops its listener within a second)' \
'bindings:List the bindings' \
'request:Make one mutual-TLS request, curl-style; the key is used through the agent' \
'doctor:Check the usual causes of a failing client-certificate call, one line each' \
'fleet:Keep an environment of many front-ends the same, through etcd' \
'demo:Walk through everything on a temporary home\: PKI, .pfx import, path, grant, export, agent, a local HTTPS service demanding a client certificate, a binding' \
'completions:Print shell completions (bash, zsh, fish, elvish, powershell)' \
'man:Print the man page (roff)' \
'config:Show or change settings\: export_dir, service_principals, expiry_warning_days, upstream_timeout, client_timeout, egress_proxy, egress_no_proxy; store egress_proxy_password' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'certkeeper commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__acl_commands] )) ||
_certkeeper__subcmd__acl_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper acl commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__agent_commands] )) ||
_certkeeper__subcmd__agent_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper agent commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__bind_commands] )) ||
_certkeeper__subcmd__bind_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper bind commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__bindings_commands] )) ||
_certkeeper__subcmd__bindings_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper bindings commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__completions_commands] )) ||
_certkeeper__subcmd__completions_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper completions commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__config_commands] )) ||
_certkeeper__subcmd__config_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper config commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__demo_commands] )) ||
_certkeeper__subcmd__demo_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper demo commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__doctor_commands] )) ||
_certkeeper__subcmd__doctor_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper doctor commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__export_commands] )) ||
_certkeeper__subcmd__export_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper export commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__fleet_commands] )) ||
_certkeeper__subcmd__fleet_commands() {
    local commands; commands=(
'init:Create the environment on etcd, with this home as its administrator (the source of truth) and a new signing key in it' \
'join:Register this front-end in an environment\: makes its own key pair, pins the administrator'\''s key, and prints the fingerprint to approve. Its agent then follows the environment' \
'approve:Admit a front-end that joined, after comparing the fingerprint it printed. It receives keys from the next publish on' \
'remove:Take a front-end out\: nothing published afterwards is sealed to it' \
'publish:Publish this home as the environment'\''s next generation' \
'diff:Show what a publish would change, against the generation on etcd' \
'status:Every front-end side by side\: alive, generation, behind, failing checks' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'certkeeper fleet commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__fleet__subcmd__approve_commands] )) ||
_certkeeper__subcmd__fleet__subcmd__approve_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper fleet approve commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__fleet__subcmd__diff_commands] )) ||
_certkeeper__subcmd__fleet__subcmd__diff_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper fleet diff commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__fleet__subcmd__help_commands] )) ||
_certkeeper__subcmd__fleet__subcmd__help_commands() {
    local commands; commands=(
'init:Create the environment on etcd, with this home as its administrator (the source of truth) and a new signing key in it' \
'join:Register this front-end in an environment\: makes its own key pair, pins the administrator'\''s key, and prints the fingerprint to approve. Its agent then follows the environment' \
'approve:Admit a front-end that joined, after comparing the fingerprint it printed. It receives keys from the next publish on' \
'remove:Take a front-end out\: nothing published afterwards is sealed to it' \
'publish:Publish this home as the environment'\''s next generation' \
'diff:Show what a publish would change, against the generation on etcd' \
'status:Every front-end side by side\: alive, generation, behind, failing checks' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'certkeeper fleet help commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__fleet__subcmd__help__subcmd__approve_commands] )) ||
_certkeeper__subcmd__fleet__subcmd__help__subcmd__approve_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper fleet help approve commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__fleet__subcmd__help__subcmd__diff_commands] )) ||
_certkeeper__subcmd__fleet__subcmd__help__subcmd__diff_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper fleet help diff commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__fleet__subcmd__help__subcmd__help_commands] )) ||
_certkeeper__subcmd__fleet__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper fleet help help commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__fleet__subcmd__help__subcmd__init_commands] )) ||
_certkeeper__subcmd__fleet__subcmd__help__subcmd__init_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper fleet help init commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__fleet__subcmd__help__subcmd__join_commands] )) ||
_certkeeper__subcmd__fleet__subcmd__help__subcmd__join_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper fleet help join commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__fleet__subcmd__help__subcmd__publish_commands] )) ||
_certkeeper__subcmd__fleet__subcmd__help__subcmd__publish_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper fleet help publish commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__fleet__subcmd__help__subcmd__remove_commands] )) ||
_certkeeper__subcmd__fleet__subcmd__help__subcmd__remove_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper fleet help remove commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__fleet__subcmd__help__subcmd__status_commands] )) ||
_certkeeper__subcmd__fleet__subcmd__help__subcmd__status_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper fleet help status commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__fleet__subcmd__init_commands] )) ||
_certkeeper__subcmd__fleet__subcmd__init_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper fleet init commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__fleet__subcmd__join_commands] )) ||
_certkeeper__subcmd__fleet__subcmd__join_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper fleet join commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__fleet__subcmd__publish_commands] )) ||
_certkeeper__subcmd__fleet__subcmd__publish_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper fleet publish commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__fleet__subcmd__remove_commands] )) ||
_certkeeper__subcmd__fleet__subcmd__remove_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper fleet remove commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__fleet__subcmd__status_commands] )) ||
_certkeeper__subcmd__fleet__subcmd__status_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper fleet status commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__grant_commands] )) ||
_certkeeper__subcmd__grant_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper grant commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help_commands] )) ||
_certkeeper__subcmd__help_commands() {
    local commands; commands=(
'init:Create the home (idempotent)\: database, master key (mode 0600), settings' \
'import:Import certificates and keys from PEM, DER, PKCS#7 (.p7b) or PKCS#12 (.pfx) files' \
'list:List entries\: store, name, subject, expiry, whether the key is present' \
'show:Show one certificate'\''s details, as the Windows certificate dialog does' \
'path:Show the certification path (root first) and whether it is valid, with the fix' \
'move:Move an entry to another store (the MMC'\''s drag between folders)' \
'remove:Delete an entry, with its private key and key permissions' \
'export:Export a certificate\: public part as DER by default; PEM, PKCS#7, or .pfx with the key' \
'grant:Allow users or groups to use an entry'\''s private key (the MMC'\''s "Manage private keys")' \
'revoke:Take back the use of an entry'\''s private key' \
'acl:Show who may use an entry'\''s private key' \
'agent:Run the key isolation agent (foreground)\: the one process that uses private keys' \
'keycheck:Check, as the calling user, that the agent lets you sign with a key' \
'bind:Bind an upstream web service to a client certificate; with --listen the agent relays plain HTTP from that loopback address (or Unix socket) to the upstream over mutual TLS' \
'unbind:Delete a binding (the agent stops its listener within a second)' \
'bindings:List the bindings' \
'request:Make one mutual-TLS request, curl-style; the key is used through the agent' \
'doctor:Check the usual causes of a failing client-certificate call, one line each' \
'fleet:Keep an environment of many front-ends the same, through etcd' \
'demo:Walk through everything on a temporary home\: PKI, .pfx import, path, grant, export, agent, a local HTTPS service demanding a client certificate, a binding' \
'completions:Print shell completions (bash, zsh, fish, elvish, powershell)' \
'man:Print the man page (roff)' \
'config:Show or change settings\: export_dir, service_principals, expiry_warning_days, upstream_timeout, client_timeout, egress_proxy, egress_no_proxy; store egress_proxy_password' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'certkeeper help commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__acl_commands] )) ||
_certkeeper__subcmd__help__subcmd__acl_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help acl commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__agent_commands] )) ||
_certkeeper__subcmd__help__subcmd__agent_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help agent commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__bind_commands] )) ||
_certkeeper__subcmd__help__subcmd__bind_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help bind commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__bindings_commands] )) ||
_certkeeper__subcmd__help__subcmd__bindings_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help bindings commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__completions_commands] )) ||
_certkeeper__subcmd__help__subcmd__completions_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help completions commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__config_commands] )) ||
_certkeeper__subcmd__help__subcmd__config_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help config commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__demo_commands] )) ||
_certkeeper__subcmd__help__subcmd__demo_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help demo commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__doctor_commands] )) ||
_certkeeper__subcmd__help__subcmd__doctor_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help doctor commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__export_commands] )) ||
_certkeeper__subcmd__help__subcmd__export_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help export commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__fleet_commands] )) ||
_certkeeper__subcmd__help__subcmd__fleet_commands() {
    local commands; commands=(
'init:Create the environment on etcd, with this home as its administrator (the source of truth) and a new signing key in it' \
'join:Register this front-end in an environment\: makes its own key pair, pins the administrator'\''s key, and prints the fingerprint to approve. Its agent then follows the environment' \
'approve:Admit a front-end that joined, after comparing the fingerprint it printed. It receives keys from the next publish on' \
'remove:Take a front-end out\: nothing published afterwards is sealed to it' \
'publish:Publish this home as the environment'\''s next generation' \
'diff:Show what a publish would change, against the generation on etcd' \
'status:Every front-end side by side\: alive, generation, behind, failing checks' \
    )
    _describe -t commands 'certkeeper help fleet commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__fleet__subcmd__approve_commands] )) ||
_certkeeper__subcmd__help__subcmd__fleet__subcmd__approve_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help fleet approve commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__fleet__subcmd__diff_commands] )) ||
_certkeeper__subcmd__help__subcmd__fleet__subcmd__diff_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help fleet diff commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__fleet__subcmd__init_commands] )) ||
_certkeeper__subcmd__help__subcmd__fleet__subcmd__init_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help fleet init commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__fleet__subcmd__join_commands] )) ||
_certkeeper__subcmd__help__subcmd__fleet__subcmd__join_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help fleet join commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__fleet__subcmd__publish_commands] )) ||
_certkeeper__subcmd__help__subcmd__fleet__subcmd__publish_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help fleet publish commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__fleet__subcmd__remove_commands] )) ||
_certkeeper__subcmd__help__subcmd__fleet__subcmd__remove_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help fleet remove commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__fleet__subcmd__status_commands] )) ||
_certkeeper__subcmd__help__subcmd__fleet__subcmd__status_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help fleet status commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__grant_commands] )) ||
_certkeeper__subcmd__help__subcmd__grant_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help grant commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__help_commands] )) ||
_certkeeper__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help help commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__import_commands] )) ||
_certkeeper__subcmd__help__subcmd__import_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help import commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__init_commands] )) ||
_certkeeper__subcmd__help__subcmd__init_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help init commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__keycheck_commands] )) ||
_certkeeper__subcmd__help__subcmd__keycheck_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help keycheck commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__list_commands] )) ||
_certkeeper__subcmd__help__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help list commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__man_commands] )) ||
_certkeeper__subcmd__help__subcmd__man_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help man commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__move_commands] )) ||
_certkeeper__subcmd__help__subcmd__move_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help move commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__path_commands] )) ||
_certkeeper__subcmd__help__subcmd__path_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help path commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__remove_commands] )) ||
_certkeeper__subcmd__help__subcmd__remove_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help remove commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__request_commands] )) ||
_certkeeper__subcmd__help__subcmd__request_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help request commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__revoke_commands] )) ||
_certkeeper__subcmd__help__subcmd__revoke_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help revoke commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__show_commands] )) ||
_certkeeper__subcmd__help__subcmd__show_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help show commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__help__subcmd__unbind_commands] )) ||
_certkeeper__subcmd__help__subcmd__unbind_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper help unbind commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__import_commands] )) ||
_certkeeper__subcmd__import_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper import commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__init_commands] )) ||
_certkeeper__subcmd__init_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper init commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__keycheck_commands] )) ||
_certkeeper__subcmd__keycheck_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper keycheck commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__list_commands] )) ||
_certkeeper__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper list commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__man_commands] )) ||
_certkeeper__subcmd__man_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper man commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__move_commands] )) ||
_certkeeper__subcmd__move_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper move commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__path_commands] )) ||
_certkeeper__subcmd__path_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper path commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__remove_commands] )) ||
_certkeeper__subcmd__remove_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper remove commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__request_commands] )) ||
_certkeeper__subcmd__request_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper request commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__revoke_commands] )) ||
_certkeeper__subcmd__revoke_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper revoke commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__show_commands] )) ||
_certkeeper__subcmd__show_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper show commands' commands "$@"
}
(( $+functions[_certkeeper__subcmd__unbind_commands] )) ||
_certkeeper__subcmd__unbind_commands() {
    local commands; commands=()
    _describe -t commands 'certkeeper unbind commands' commands "$@"
}

if [ "$funcstack[1]" = "_certkeeper" ]; then
    _certkeeper "$@"
else
    compdef _certkeeper certkeeper
fi
