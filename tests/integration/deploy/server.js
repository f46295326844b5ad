// An HTTPS server with Node.js, for test_deploy_node_python.sh: loads CERT and its key stub (a
// private key to OpenSSL, read through the keyward provider: node --openssl-shared-config with
// OPENSSL_CONF, or a nodejs_conf section), listens, then drops privileges to USER and answers
// "hello node". Usage: node server.js USER PORT CERT STUB [PORT CERT STUB ...]
'use strict';
const fs = require('fs');
const https = require('https');

const [user, ...args] = process.argv.slice(2);
const ciphers = 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:AES128-GCM-SHA256';
let listening = 0;
const count = args.length / 3;
for (let i = 0; i < args.length; i += 3) {
  const [port, cert, stub] = args.slice(i, i + 3);
  const server = https.createServer(
      {cert: fs.readFileSync(cert), key: fs.readFileSync(stub), minVersion: 'TLSv1.2', ciphers},
      (req, res) => res.end('hello node\n'));
  server.listen(Number(port), '127.0.0.1', () => {
    if (++listening === count) {
      process.setgroups([]);
      process.setgid(user);
      process.setuid(user);
      console.log(`node ${process.version} OpenSSL ${process.versions.openssl} serving as ${user}`);
    }
  });
}
