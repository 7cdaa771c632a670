# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_certkeeper_global_optspecs
    string join \n home= json h/help V/version
end

function __fish_certkeeper_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_certkeeper_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_certkeeper_using_subcommand
    set -l cmd (__fish_certkeeper_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c certkeeper -n "__fish_certkeeper_needs_command" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_needs_command" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c certkeeper -n "__fish_certkeeper_needs_command" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_needs_command" -f -a "init" -d 'Create the home (idempotent): database, master key (mode 0600), settings'
complete -c certkeeper -n "__fish_certkeeper_needs_command" -f -a "import" -d 'Import certificates and keys from PEM, DER, PKCS#7 (.p7b) or PKCS#12 (.pfx) files'
complete -c certkeeper -n "__fish_certkeeper_needs_command" -f -a "list" -d 'List entries: store, name, subject, expiry, whether the key is present'
complete -c certkeeper -n "__fish_certkeeper_needs_command" -f -a "show" -d 'Show one certificate\'s details, as the Windows certificate dialog does'
complete -c certkeeper -n "__fish_certkeeper_needs_command" -f -a "path" -d 'Show the certification path (root first) and whether it is valid, with the fix'
complete -c certkeeper -n "__fish_certkeeper_needs_command" -f -a "move" -d 'Move an entry to another store (the MMC\'s drag between folders)'
complete -c certkeeper -n "__fish_certkeeper_needs_command" -f -a "remove" -d 'Delete an entry, with its private key and key permissions'
complete -c certkeeper -n "__fish_certkeeper_needs_command" -f -a "export" -d 'Export a certificate: public part as DER by default; PEM, PKCS#7, or .pfx with the key'
complete -c certkeeper -n "__fish_certkeeper_needs_command" -f -a "grant" -d 'Allow users or groups to use an entry\'s private key (the MMC\'s "Manage private keys")'
complete -c certkeeper -n "__fish_certkeeper_needs_command" -f -a "revoke" -d 'Take back the use of an entry\'s private key'
complete -c certkeeper -n "__fish_certkeeper_needs_command" -f -a "acl" -d 'Show who may use an entry\'s private key'
complete -c certkeeper -n "__fish_certkeeper_needs_command" -f -a "agent" -d 'Run the key isolation agent (foreground): the one process that uses private keys'
complete -c certkeeper -n "__fish_certkeeper_needs_command" -f -a "keycheck" -d 'Check, as the calling user, that the agent lets you sign with a key'
complete -c certkeeper -n "__fish_certkeeper_needs_command" -f -a "bind" -d 'Bind an upstream web service to a client certificate; with --listen the agent relays plain HTTP from that loopback address (or Unix socket) to the upstream over mutual TLS'
complete -c certkeeper -n "__fish_certkeeper_needs_command" -f -a "unbind" -d 'Delete a binding (the agent stops its listener within a second)'
complete -c certkeeper -n "__fish_certkeeper_needs_command" -f -a "bindings" -d 'List the bindings'
complete -c certkeeper -n "__fish_certkeeper_needs_command" -f -a "request" -d 'Make one mutual-TLS request, curl-style; the key is used through the agent'
complete -c certkeeper -n "__fish_certkeeper_needs_command" -f -a "doctor" -d 'Check the usual causes of a failing client-certificate call, one line each'
complete -c certkeeper -n "__fish_certkeeper_needs_command" -f -a "fleet" -d 'Keep an environment of many front-ends the same, through etcd'
complete -c certkeeper -n "__fish_certkeeper_needs_command" -f -a "demo" -d 'Walk through everything on a temporary home: PKI, .pfx import, path, grant, export, agent, a local HTTPS service demanding a client certificate, a binding'
complete -c certkeeper -n "__fish_certkeeper_needs_command" -f -a "completions" -d 'Print shell completions (bash, zsh, fish, elvish, powershell)'
complete -c certkeeper -n "__fish_certkeeper_needs_command" -f -a "man" -d 'Print the man page (roff)'
complete -c certkeeper -n "__fish_certkeeper_needs_command" -f -a "config" -d 'Show or change settings: export_dir, service_principals, expiry_warning_days, upstream_timeout, client_timeout, egress_proxy, egress_no_proxy; store egress_proxy_password'
complete -c certkeeper -n "__fish_certkeeper_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand init" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand init" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand init" -s h -l help -d 'Print help'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand init" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand import" -l store -d 'Where certificates go' -r -f -a "auto\t'By certificate type'
personal\t'Certificates with their private key'
root\t'Trusted root CAs'
intermediate\t'Intermediate CAs'
other\t'End-entity certificates without a key'
disallowed\t'Explicitly distrusted'"
complete -c certkeeper -n "__fish_certkeeper_using_subcommand import" -l name -d 'Friendly name for the certificate with the private key (or the only certificate)' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand import" -l password-env -d 'Read the password from this environment variable' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand import" -l password-file -d 'Read the password from the first line of this file' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand import" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand import" -l no-roots -d 'Do not add root CAs (they are listed as skipped)'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand import" -l non-exportable -d 'Mark the private keys non-exportable: `export --format pfx` will refuse them'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand import" -l password-stdin -d 'Read the password from standard input (up to the first newline)'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand import" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand import" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand import" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand list" -l store -d 'Only this store' -r -f -a "personal\t'Certificates with their private key'
root\t'Trusted root CAs'
intermediate\t'Intermediate CAs'
other\t'End-entity certificates without a key'
disallowed\t'Explicitly distrusted'"
complete -c certkeeper -n "__fish_certkeeper_using_subcommand list" -l expiring -d 'Only certificates that expire within this many days (or have expired)' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand list" -l search -d 'Only certificates with a friendly name, export name, or "Issued to" name (a subject CN or DNS name, any case) that begins with TEXT' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand list" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand list" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand list" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand show" -l socket -d 'The agent\'s socket, asked when this user cannot open the home [env: CERTKEEPER_SOCKET]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand show" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand show" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand show" -s h -l help -d 'Print help'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand show" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand path" -l at -d 'Validate at this time instead of now (2027-01-01 or RFC 3339)' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand path" -l purpose -d 'What the certificate must be good for' -r -f -a "client-auth\t'TLS client authentication (clientAuth EKU)'
server-auth\t'TLS server authentication (serverAuth EKU)'
any\t'No extended key usage requirement'"
complete -c certkeeper -n "__fish_certkeeper_using_subcommand path" -l socket -d 'The agent\'s socket, asked when this user cannot open the home [env: CERTKEEPER_SOCKET]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand path" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand path" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand path" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand path" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand move" -l to -d 'The store to move it to' -r -f -a "personal\t'Certificates with their private key'
root\t'Trusted root CAs'
intermediate\t'Intermediate CAs'
other\t'End-entity certificates without a key'
disallowed\t'Explicitly distrusted'"
complete -c certkeeper -n "__fish_certkeeper_using_subcommand move" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand move" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand move" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand move" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand remove" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand remove" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand remove" -s h -l help -d 'Print help'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand remove" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand export" -l format -d 'Output format' -r -f -a "der\t'Binary certificate (.cer/.der), the Windows default'
pem\t'Base-64 text (.pem/.crt)'
p7b\t'PKCS#7 certificate bundle (.p7b)'
pfx\t'PKCS#12 with the private key (.pfx); needs a password option'"
complete -c certkeeper -n "__fish_certkeeper_using_subcommand export" -l out -d 'Where to write (default: standard output)' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand export" -l as -d 'Write the DER to <export_dir>/NAME and record NAME as the export name' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand export" -l password-env -d 'Read the password from this environment variable' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand export" -l password-file -d 'Read the password from the first line of this file' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand export" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand export" -l chain -d 'Include the issuing CAs found in the home (pem, p7b, pfx)'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand export" -l force -d 'With --as: replace a file that holds another certificate'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand export" -l legacy -d 'For pfx: 3DES and SHA-1 MAC, for Windows Server 2016 and older and Java 8'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand export" -l password-stdin -d 'Read the password from standard input (up to the first newline)'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand export" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand export" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand export" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand grant" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand grant" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand grant" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand grant" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand revoke" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand revoke" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand revoke" -s h -l help -d 'Print help'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand revoke" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand acl" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand acl" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand acl" -s h -l help -d 'Print help'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand acl" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand agent" -l socket -d 'The socket [env: CERTKEEPER_SOCKET; default: /run/certkeeper/agent.sock for a root-owned home, else $XDG_RUNTIME_DIR/certkeeper/agent.sock]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand agent" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand agent" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand agent" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand agent" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand keycheck" -l socket -d 'The agent\'s socket [env: CERTKEEPER_SOCKET]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand keycheck" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand keycheck" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand keycheck" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand keycheck" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand bind" -l cert -d 'The client certificate (a REF)' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand bind" -l upstream -d 'The upstream base URL (https://...)' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand bind" -l listen -d 'Where the agent relays from: a loopback address (127.0.0.1:PORT) or unix:/ABSOLUTE/PATH' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand bind" -l server-ca -d 'How to verify the upstream: root (the home\'s root store), system, or a REF' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand bind" -l allow -d 'Only these principals (user:NAME, group:NAME, uid:N, gid:N) may use the binding, among those the key\'s ACL admits (default: whom the ACL admits)' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand bind" -l proxy -d 'Reach the upstream through this forward proxy (HTTP CONNECT): http://[user@]host:port. Default: the home\'s egress_proxy setting. The user\'s password is stored sealed with `certkeeper config egress_proxy_password --password-env VAR --proxy URL`' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand bind" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand bind" -l legacy-tls -d 'The upstream is on an old TLS stack: also accept TLS 1.0 and 1.1, RSA key exchange and CBC suites, and a server certificate that names its host only in its subject CN (no subjectAltName). The same trust anchors are used; `certkeeper doctor` warns about every binding that has it'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand bind" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand bind" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand bind" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand unbind" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand unbind" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand unbind" -s h -l help -d 'Print help'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand unbind" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand bindings" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand bindings" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand bindings" -s h -l help -d 'Print help'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand bindings" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand request" -l cert -d 'The client certificate: a REF, or the certificate\'s file (PEM or DER) whose entry in the home is used' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand request" -l binding -d 'Use a binding\'s certificate, upstream and server trust' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand request" -s X -l request -d 'The method (default GET, or POST with -d)' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand request" -s H -l header -d 'A header, "Name: value" (repeatable)' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand request" -s d -l data -d 'The body, or @FILE to read it from a file' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand request" -l soap-action -d 'SOAP 1.1: POST with Content-Type text/xml and this SOAPAction' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand request" -l server-ca -d 'How to verify the server: root (the home\'s root store), system, a REF or a CA file' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand request" -l cacert -d 'Verify the server with the CA certificates in this file (as --server-ca FILE)' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand request" -s o -l output -d 'Write the body (and with -i the head) to this file instead of stdout' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand request" -s m -l max-time -d 'Give up when the whole call takes longer than this (seconds, e.g. 30 or 2.5)' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand request" -l connect-timeout -d 'Give up when connecting (TCP and TLS) takes longer than this (seconds)' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand request" -l socket -d 'The agent\'s socket [env: CERTKEEPER_SOCKET]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand request" -s x -l proxy -d 'Go through this forward proxy (HTTP CONNECT; the TLS session runs end to end through it): http://[user@]host[:port] (port 1080 by default), "" for none. Default, as curl: https_proxy, HTTPS_PROXY, all_proxy, ALL_PROXY (where, as with curl, http://user:password@host:port is accepted; never here)' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand request" -l noproxy -d 'Hosts reached without the proxy, as NO_PROXY (default: no_proxy, NO_PROXY): comma-separated host names (which match their subdomains too), IP addresses and ranges (10.0.0.0/8), or * for all' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand request" -l proxy-password-env -d 'The proxy user\'s password, from this environment variable (default: the one the home keeps for that proxy and user, for the home\'s owner)' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand request" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand request" -l soap12 -d 'SOAP 1.2: Content-Type application/soap+xml (with --soap-action as its action)'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand request" -s i -l include -d 'Print the response status line and headers before the body'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand request" -s v -l verbose -d 'Show TLS details, the certificates and the exchange on stderr'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand request" -s f -l fail -d 'Exit 1 when the upstream answers with an HTTP error (400 or more)'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand request" -s k -l insecure -d 'Do not verify the server\'s certificate at all (says so loudly)'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand request" -l legacy-tls -d 'The partner is on an old TLS stack: also accept TLS 1.0 and 1.1, RSA key exchange and CBC suites, and a server certificate that names its host only in its subject CN. The same trust anchors are used. (A binding\'s --legacy-tls applies to request --binding too.)'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand request" -s s -l silent -d 'No notes on stderr (such as the upstream\'s error status); errors are still shown'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand request" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand request" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand request" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand doctor" -l at -d 'Check as of this time (2027-01-01 or RFC 3339), e.g. ahead of an expiry' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand doctor" -l socket -d 'The agent\'s socket [env: CERTKEEPER_SOCKET]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand doctor" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand doctor" -l online -d 'Also make a TLS handshake with each binding\'s upstream'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand doctor" -l fleet -d 'Instead: check every front-end of this home\'s environment (alive, on the latest generation, no failing checks), naming each that is not'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand doctor" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand doctor" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and not __fish_seen_subcommand_from init join approve remove publish diff status help" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and not __fish_seen_subcommand_from init join approve remove publish diff status help" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and not __fish_seen_subcommand_from init join approve remove publish diff status help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and not __fish_seen_subcommand_from init join approve remove publish diff status help" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and not __fish_seen_subcommand_from init join approve remove publish diff status help" -f -a "init" -d 'Create the environment on etcd, with this home as its administrator (the source of truth) and a new signing key in it'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and not __fish_seen_subcommand_from init join approve remove publish diff status help" -f -a "join" -d 'Register this front-end in an environment: makes its own key pair, pins the administrator\'s key, and prints the fingerprint to approve. Its agent then follows the environment'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and not __fish_seen_subcommand_from init join approve remove publish diff status help" -f -a "approve" -d 'Admit a front-end that joined, after comparing the fingerprint it printed. It receives keys from the next publish on'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and not __fish_seen_subcommand_from init join approve remove publish diff status help" -f -a "remove" -d 'Take a front-end out: nothing published afterwards is sealed to it'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and not __fish_seen_subcommand_from init join approve remove publish diff status help" -f -a "publish" -d 'Publish this home as the environment\'s next generation'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and not __fish_seen_subcommand_from init join approve remove publish diff status help" -f -a "diff" -d 'Show what a publish would change, against the generation on etcd'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and not __fish_seen_subcommand_from init join approve remove publish diff status help" -f -a "status" -d 'Every front-end side by side: alive, generation, behind, failing checks'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and not __fish_seen_subcommand_from init join approve remove publish diff status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from init" -l etcd -d 'etcd endpoints, comma-separated (https://HOST:PORT; http:// for tests)' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from init" -l env -d 'The environment\'s name' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from init" -l etcd-cert -d 'For https etcd: the client certificate (with its key in this home) presented to etcd; etcd\'s CA must be in the root store. It is never published' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from init" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from init" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from init" -s h -l help -d 'Print help'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from init" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from join" -l etcd -d 'etcd endpoints, comma-separated' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from join" -l env -d 'The environment\'s name' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from join" -l node -d 'This front-end\'s name (default: the host name)' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from join" -l etcd-cert -d 'For https etcd: this front-end\'s client certificate for etcd (REF)' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from join" -l admin-fingerprint -d 'Refuse the environment unless its administrator key has this fingerprint (what fleet init printed)' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from join" -l listen-host -d 'Serve the published bindings on this loopback address instead of theirs (several front-ends on one machine, e.g. 127.0.0.2)' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from join" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from join" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from join" -s h -l help -d 'Print help'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from join" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from approve" -l fingerprint -d 'The fingerprint `fleet join` printed on it' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from approve" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from approve" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from approve" -s h -l help -d 'Print help'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from approve" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from remove" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from remove" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from publish" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from publish" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from publish" -s h -l help -d 'Print help'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from publish" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from diff" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from diff" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from diff" -s h -l help -d 'Print help'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from diff" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from status" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from status" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from help" -f -a "init" -d 'Create the environment on etcd, with this home as its administrator (the source of truth) and a new signing key in it'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from help" -f -a "join" -d 'Register this front-end in an environment: makes its own key pair, pins the administrator\'s key, and prints the fingerprint to approve. Its agent then follows the environment'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from help" -f -a "approve" -d 'Admit a front-end that joined, after comparing the fingerprint it printed. It receives keys from the next publish on'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Take a front-end out: nothing published afterwards is sealed to it'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from help" -f -a "publish" -d 'Publish this home as the environment\'s next generation'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from help" -f -a "diff" -d 'Show what a publish would change, against the generation on etcd'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from help" -f -a "status" -d 'Every front-end side by side: alive, generation, behind, failing checks'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand fleet; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand demo" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand demo" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand demo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand demo" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand completions" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand completions" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand completions" -s h -l help -d 'Print help'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand completions" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand man" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand man" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand man" -s h -l help -d 'Print help'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand man" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand config" -l password-env -d 'egress_proxy_password only: read the password from this environment variable' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand config" -l proxy -d 'egress_proxy_password only: the proxy URL (with its user) the password is for (default: the egress_proxy setting)' -r
complete -c certkeeper -n "__fish_certkeeper_using_subcommand config" -l home -d 'The home directory [env: CERTKEEPER_HOME; default: /var/lib/certkeeper for root, else $XDG_DATA_HOME/certkeeper]' -r -F
complete -c certkeeper -n "__fish_certkeeper_using_subcommand config" -l json -d 'Print one JSON document on stdout instead of text'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand config" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand config" -s V -l version -d 'Print version'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and not __fish_seen_subcommand_from init import list show path move remove export grant revoke acl agent keycheck bind unbind bindings request doctor fleet demo completions man config help" -f -a "init" -d 'Create the home (idempotent): database, master key (mode 0600), settings'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and not __fish_seen_subcommand_from init import list show path move remove export grant revoke acl agent keycheck bind unbind bindings request doctor fleet demo completions man config help" -f -a "import" -d 'Import certificates and keys from PEM, DER, PKCS#7 (.p7b) or PKCS#12 (.pfx) files'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and not __fish_seen_subcommand_from init import list show path move remove export grant revoke acl agent keycheck bind unbind bindings request doctor fleet demo completions man config help" -f -a "list" -d 'List entries: store, name, subject, expiry, whether the key is present'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and not __fish_seen_subcommand_from init import list show path move remove export grant revoke acl agent keycheck bind unbind bindings request doctor fleet demo completions man config help" -f -a "show" -d 'Show one certificate\'s details, as the Windows certificate dialog does'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and not __fish_seen_subcommand_from init import list show path move remove export grant revoke acl agent keycheck bind unbind bindings request doctor fleet demo completions man config help" -f -a "path" -d 'Show the certification path (root first) and whether it is valid, with the fix'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and not __fish_seen_subcommand_from init import list show path move remove export grant revoke acl agent keycheck bind unbind bindings request doctor fleet demo completions man config help" -f -a "move" -d 'Move an entry to another store (the MMC\'s drag between folders)'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and not __fish_seen_subcommand_from init import list show path move remove export grant revoke acl agent keycheck bind unbind bindings request doctor fleet demo completions man config help" -f -a "remove" -d 'Delete an entry, with its private key and key permissions'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and not __fish_seen_subcommand_from init import list show path move remove export grant revoke acl agent keycheck bind unbind bindings request doctor fleet demo completions man config help" -f -a "export" -d 'Export a certificate: public part as DER by default; PEM, PKCS#7, or .pfx with the key'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and not __fish_seen_subcommand_from init import list show path move remove export grant revoke acl agent keycheck bind unbind bindings request doctor fleet demo completions man config help" -f -a "grant" -d 'Allow users or groups to use an entry\'s private key (the MMC\'s "Manage private keys")'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and not __fish_seen_subcommand_from init import list show path move remove export grant revoke acl agent keycheck bind unbind bindings request doctor fleet demo completions man config help" -f -a "revoke" -d 'Take back the use of an entry\'s private key'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and not __fish_seen_subcommand_from init import list show path move remove export grant revoke acl agent keycheck bind unbind bindings request doctor fleet demo completions man config help" -f -a "acl" -d 'Show who may use an entry\'s private key'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and not __fish_seen_subcommand_from init import list show path move remove export grant revoke acl agent keycheck bind unbind bindings request doctor fleet demo completions man config help" -f -a "agent" -d 'Run the key isolation agent (foreground): the one process that uses private keys'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and not __fish_seen_subcommand_from init import list show path move remove export grant revoke acl agent keycheck bind unbind bindings request doctor fleet demo completions man config help" -f -a "keycheck" -d 'Check, as the calling user, that the agent lets you sign with a key'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and not __fish_seen_subcommand_from init import list show path move remove export grant revoke acl agent keycheck bind unbind bindings request doctor fleet demo completions man config help" -f -a "bind" -d 'Bind an upstream web service to a client certificate; with --listen the agent relays plain HTTP from that loopback address (or Unix socket) to the upstream over mutual TLS'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and not __fish_seen_subcommand_from init import list show path move remove export grant revoke acl agent keycheck bind unbind bindings request doctor fleet demo completions man config help" -f -a "unbind" -d 'Delete a binding (the agent stops its listener within a second)'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and not __fish_seen_subcommand_from init import list show path move remove export grant revoke acl agent keycheck bind unbind bindings request doctor fleet demo completions man config help" -f -a "bindings" -d 'List the bindings'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and not __fish_seen_subcommand_from init import list show path move remove export grant revoke acl agent keycheck bind unbind bindings request doctor fleet demo completions man config help" -f -a "request" -d 'Make one mutual-TLS request, curl-style; the key is used through the agent'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and not __fish_seen_subcommand_from init import list show path move remove export grant revoke acl agent keycheck bind unbind bindings request doctor fleet demo completions man config help" -f -a "doctor" -d 'Check the usual causes of a failing client-certificate call, one line each'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and not __fish_seen_subcommand_from init import list show path move remove export grant revoke acl agent keycheck bind unbind bindings request doctor fleet demo completions man config help" -f -a "fleet" -d 'Keep an environment of many front-ends the same, through etcd'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and not __fish_seen_subcommand_from init import list show path move remove export grant revoke acl agent keycheck bind unbind bindings request doctor fleet demo completions man config help" -f -a "demo" -d 'Walk through everything on a temporary home: PKI, .pfx import, path, grant, export, agent, a local HTTPS service demanding a client certificate, a binding'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and not __fish_seen_subcommand_from init import list show path move remove export grant revoke acl agent keycheck bind unbind bindings request doctor fleet demo completions man config help" -f -a "completions" -d 'Print shell completions (bash, zsh, fish, elvish, powershell)'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and not __fish_seen_subcommand_from init import list show path move remove export grant revoke acl agent keycheck bind unbind bindings request doctor fleet demo completions man config help" -f -a "man" -d 'Print the man page (roff)'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and not __fish_seen_subcommand_from init import list show path move remove export grant revoke acl agent keycheck bind unbind bindings request doctor fleet demo completions man config help" -f -a "config" -d 'Show or change settings: export_dir, service_principals, expiry_warning_days, upstream_timeout, client_timeout, egress_proxy, egress_no_proxy; store egress_proxy_password'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and not __fish_seen_subcommand_from init import list show path move remove export grant revoke acl agent keycheck bind unbind bindings request doctor fleet demo completions man config help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and __fish_seen_subcommand_from fleet" -f -a "init" -d 'Create the environment on etcd, with this home as its administrator (the source of truth) and a new signing key in it'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and __fish_seen_subcommand_from fleet" -f -a "join" -d 'Register this front-end in an environment: makes its own key pair, pins the administrator\'s key, and prints the fingerprint to approve. Its agent then follows the environment'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and __fish_seen_subcommand_from fleet" -f -a "approve" -d 'Admit a front-end that joined, after comparing the fingerprint it printed. It receives keys from the next publish on'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and __fish_seen_subcommand_from fleet" -f -a "remove" -d 'Take a front-end out: nothing published afterwards is sealed to it'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and __fish_seen_subcommand_from fleet" -f -a "publish" -d 'Publish this home as the environment\'s next generation'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and __fish_seen_subcommand_from fleet" -f -a "diff" -d 'Show what a publish would change, against the generation on etcd'
complete -c certkeeper -n "__fish_certkeeper_using_subcommand help; and __fish_seen_subcommand_from fleet" -f -a "status" -d 'Every front-end side by side: alive, generation, behind, failing checks'
