#!/usr/bin/env python3
"""Asks a PostgreSQL server how it would authenticate a connection, without a password.

    pgprobe.py HOST PORT SOURCE_ADDRESS USER DATABASE [ssl]

Connects from SOURCE_ADDRESS (any 127.x address works on Linux loopback), optionally negotiates
SSL, sends a startup packet (DATABASE 'replication' asks for a physical replication connection),
and prints what the server answers first: trust, scram-sha-256, md5, password, reject (pg_hba.conf
rejects the connection), nomatch (no pg_hba.conf entry) or error:<message>.
"""
import socket
import ssl as ssllib
import struct
import sys


def main():
    host, port, source, user, database = sys.argv[1:6]
    use_ssl = len(sys.argv) > 6 and sys.argv[6] == "ssl"
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.bind((source, 0))
    sock.connect((host, int(port)))
    if use_ssl:
        sock.sendall(struct.pack("!II", 8, 80877103))
        if sock.recv(1) != b"S":
            print("nossl")
            return
        ctx = ssllib.SSLContext(ssllib.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssllib.CERT_NONE
        sock = ctx.wrap_socket(sock)
    params = {"user": user, "database": database}
    if database == "replication":
        params["replication"] = "true"
    body = struct.pack("!I", 196608) + b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params.items()) + b"\0"
    sock.sendall(struct.pack("!I", len(body) + 4) + body)
    head = b""
    while len(head) < 5:
        chunk = sock.recv(5 - len(head))
        if not chunk:
            print("error:closed")
            return
        head += chunk
    kind, length = head[:1], struct.unpack("!I", head[1:5])[0]
    payload = b""
    while len(payload) < length - 4:
        chunk = sock.recv(length - 4 - len(payload))
        if not chunk:
            break
        payload += chunk
    if kind == b"R":
        code = struct.unpack("!I", payload[:4])[0]
        print({0: "trust", 3: "password", 5: "md5", 10: "scram-sha-256"}.get(code, f"auth{code}"))
    elif kind == b"E":
        fields = {f[:1]: f[1:].decode(errors="replace") for f in payload.split(b"\0") if f}
        message = fields.get(b"M", "")
        if "rejects connection" in message:
            print("reject")
        elif "no pg_hba.conf entry" in message:
            print("nomatch")
        else:
            print("error:" + message)
    else:
        print("error:unexpected " + repr(kind))
    sock.close()


if __name__ == "__main__":
    main()
