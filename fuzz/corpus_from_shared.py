#!/usr/bin/env python3
"""Builds the fuzz targets' starting inputs into OUT/<target>/ (default /tmp/fuzz-start) from the
shared corpora ($CERTKEEPER_CORPORA, default ../../shared/corpora from the repository)
plus hand-written agent frames and HTTP requests. Reduce them with
`-merge=1` before committing (README.md)."""
import os, sys, hashlib, base64, re, json, struct
HERE=os.path.dirname(os.path.abspath(__file__))
V=os.path.join(os.environ.get('CERTKEEPER_CORPORA', os.path.join(HERE,'../../shared/corpora')),'cryptography_vectors')
OUT=sys.argv[1] if len(sys.argv)>1 else '/tmp/fuzz-start'
# Passwords of the encrypted keys under asymmetric/ (found with `openssl pkey -passin`;
# "?" where none of the usual ones opened it: "password" is tried).
ENCRYPTED_PASSWORDS={'PEM_Serialization/dsa_private_key.pem': '123456', 'PEM_Serialization/ec_private_key_encrypted.pem': '123456', 'PEM_Serialization/rsa_private_key.pem': '123456', 'PKCS8/bad-encryption-oid.pem': '?', 'PKCS8/ec_private_key_encrypted.pem': '123456', 'PKCS8/ed25519-scrypt.pem': 'hunter42', 'PKCS8/enc-ec-sha1-128-rc4.pem': '?', 'PKCS8/enc-rsa-3des.pem': 'password', 'PKCS8/enc-rsa-pkcs8-pbkdf2-0iter.pem': '?', 'PKCS8/enc-rsa-pkcs8.pem': 'foobar', 'PKCS8/enc-unknown-algorithm.pem': '?', 'PKCS8/enc-unknown-kdf.pem': '?', 'PKCS8/enc-unknown-pbkdf2-prf.pem': '?', 'PKCS8/enc2-rsa-pkcs8.pem': '?', 'PKCS8/pkcs12_s2k_pem-X_9607.pem': '123456', 'PKCS8/pkcs12_s2k_pem-X_9671.pem': '123456', 'PKCS8/pkcs12_s2k_pem-X_9925.pem': '123456', 'PKCS8/pkcs12_s2k_pem-X_9926.pem': '123456', 'PKCS8/pkcs12_s2k_pem-X_9927.pem': '123456', 'PKCS8/pkcs12_s2k_pem-X_9928.pem': '123456', 'PKCS8/pkcs12_s2k_pem-X_9929.pem': '123456', 'PKCS8/pkcs12_s2k_pem-X_9930.pem': '123456', 'PKCS8/pkcs12_s2k_pem-X_9931.pem': '123456', 'PKCS8/pkcs12_s2k_pem-X_9932.pem': '123456', 'PKCS8/rsa-40bitrc2.pem': '?', 'PKCS8/rsa-aes-192-cbc.pem': '?', 'PKCS8/rsa-pbe-3des-long-salt.pem': 'password', 'PKCS8/rsa-pbewithmd5anddescbc.pem': '?', 'PKCS8/rsa-rc2-cbc-effective-key-length.pem': '?', 'PKCS8/rsa-rc2-cbc.pem': '?', 'PKCS8/rsa_pkcs8_pbes2_pbkdf2_2048_3des_sha224.pem': '?', 'PKCS8/rsa_pkcs8_pbes2_pbkdf2_2048_3des_sha384.pem': '?', 'PKCS8/rsa_pkcs8_pbes2_pbkdf2_2048_3des_sha512.pem': '?', 'Traditional_OpenSSL_Serialization/key1-malformed-dek-info.pem': '?', 'Traditional_OpenSSL_Serialization/key1-malformed-iv.pem': '?', 'Traditional_OpenSSL_Serialization/key1-no-dek-info.pem': '?', 'Traditional_OpenSSL_Serialization/key1-short-iv.pem': '?', 'Traditional_OpenSSL_Serialization/key1.pem': '123456', 'Traditional_OpenSSL_Serialization/key2.pem': '?', 'Traditional_OpenSSL_Serialization/testrsa-encrypted.pem': 'password', 'DER_Serialization/ec_private_key_encrypted.der': '123456', 'DER_Serialization/enc-rsa-pkcs8.der': 'foobar', 'DER_Serialization/enc2-rsa-pkcs8.der': '?'}
targets=['ber','pem','pkcs7','pkcs12','encrypted','read_file','read_file_password','agent_request','framing']
for t in targets: os.makedirs(f'{OUT}/{t}',exist_ok=True)
def put(t,data):
    h=hashlib.sha1(data).hexdigest()
    open(f'{OUT}/{t}/{h}','wb').write(data)
def pw(p,data):
    if p is None: return b'\0'+data
    b=p.encode(); return bytes([len(b)+1])+b+data
def pem_blocks(data):
    out=[]
    for m in re.finditer(rb'-----BEGIN ([^-]*)-----\r?\n(.*?)-----END',data,re.S):
        body=b''.join(l.strip() for l in m.group(2).split(b'\n') if b':' not in l)
        try: out.append((m.group(1),base64.b64decode(body)))
        except Exception: pass
    return out
files=[]
for d in ['pkcs12','pkcs7','x509','asymmetric']:
    for root,_,fs in os.walk(f'{V}/{d}'):
        for f in fs:
            if f.endswith(('.txt','.tsv','.md')): continue
            files.append(os.path.join(root,f))
manifest={}
for line in open(f'{V}/pkcs12-manifest.tsv').read().splitlines()[1:]:
    c=line.split('\t'); manifest[c[0]]=None if c[1].startswith('(empty') else c[1]
encpw={}
for f,p in ENCRYPTED_PASSWORDS.items():
    encpw[f]=p if p!='?' else 'password'
for path in files:
    rel=os.path.relpath(path,V); data=open(path,'rb').read()
    put('read_file',data)
    is_pem=b'-----BEGIN ' in data
    if is_pem:
        put('pem',data)
        for label,der in pem_blocks(data):
            put('ber',der)
            if label in (b'PKCS7',b'CMS'): put('pkcs7',der)
    else:
        put('ber',data)
        if rel.startswith('pkcs7/'): put('pkcs7',data)
    if rel.startswith('pkcs12/') and rel.endswith('.p12'):
        p=manifest.get(rel,'cryptography')
        put('pkcs12',pw(p,data)); put('read_file_password',pw(p,data))
    arel=rel[len('asymmetric/'):] if rel.startswith('asymmetric/') else None
    if arel in encpw:
        p=encpw[arel]
        put('encrypted',pw(p,data)); put('read_file_password',pw(p,data))
    elif rel.startswith('asymmetric/') and b'PRIVATE KEY' in data:
        put('encrypted',pw(None,data))
# agent requests
reqs=[{"op":"hello"},{"op":"keys"},{"op":"resolve","reference":"partner"},
 {"op":"describe","reference":"subject:Partner Root"},{"op":"trust","server_ca":"root"},
 {"op":"binding","name":"partner"},
 {"op":"sign","thumbprint":"ab"*32,"scheme":"ECDSA_NISTP256_SHA256","data":base64.b64encode(b'x'*32).decode()}]
frames=[]
for r in reqs:
    body=json.dumps(dict(v=2,**r)).encode(); f=struct.pack('>I',len(body))+body
    frames.append(f); put('agent_request',f)
put('agent_request',b''.join(frames[:3]))
for body in [b'{"v":1,"op":"hello"}',b'{"op":"hello"}',b'not json',b'{"v":2,"op":"nope"}',b'{"v":2,"op":"resolve"}']:
    put('agent_request',struct.pack('>I',len(body))+body)
put('agent_request',struct.pack('>I',70000))
# framing
heads=[b'GET / HTTP/1.1\r\nHost: a\r\n\r\n',
 b'POST /svc HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n',
 b'POST /svc HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive, X-Trace\r\n\r\n4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Sum: 1\r\n\r\n',
 b'POST / HTTP/1.0\r\nContent-Length: 3, 3\r\nConnection: close\r\n\r\nabc',
 b'POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
 b'a\r\n0123456789\r\n0\r\n\r\n', b'fffffffffffffff\r\n']
for i,h in enumerate(heads):
    for step in (0,1,7):
        put('framing',bytes([step])+h)
for t in targets: print(t,len(os.listdir(f'{OUT}/{t}')))
