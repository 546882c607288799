// Signs cosign's signature statement over a digest into a DSSE bundle with
// Sigstore's JavaScript signer and a local key, no witnesses:
//   node sign.js KEY.pem sha256:<hex> [key=value ...] > bundle.json
// The DSSE keyid is cleared, as cosign leaves it.
const fs = require('fs'), crypto = require('crypto');
const { DSSEBundleBuilder } = require('@sigstore/sign');
const { bundleToJSON } = require('@sigstore/bundle');
const [keyPath, digest, ...pairs] = process.argv.slice(2);
const priv = crypto.createPrivateKey(fs.readFileSync(keyPath)), pub = crypto.createPublicKey(priv);
const hint = crypto.createHash('sha256')
  .update(pub.export({ type: 'spki', format: 'der' })).digest('base64');
const signer = {
  sign: async (pae) => ({
    signature: crypto.sign('sha256', pae, priv),
    key: { $case: 'publicKey', publicKey: pub.export({ type: 'spki', format: 'pem' }), hint },
  }),
};
const [alg, hex] = digest.split(':');
const annotations = Object.fromEntries(pairs.map((p) => p.split('=')));
const statement = {
  _type: 'https://in-toto.io/Statement/v1',
  subject: [{ digest: { [alg]: hex }, annotations }],
  predicateType: 'https://sigstore.dev/cosign/sign/v1',
  predicate: {},
};
new DSSEBundleBuilder({ signer, witnesses: [] })
  .create({ data: Buffer.from(JSON.stringify(statement)), type: 'application/vnd.in-toto+json' })
  .then((b) => {
    b.content.dsseEnvelope.signatures[0].keyid = '';
    process.stdout.write(JSON.stringify(bundleToJSON(b)) + '\n');
  });
