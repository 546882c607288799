// Verifies a Sigstore bundle with a public key, with Sigstore's JavaScript
// verifier and no transparency log, certificate log or timestamp required:
//   node verify.js KEY.pub BUNDLE.json sha256:<hex>   (a signed statement)
//   node verify.js KEY.pub BUNDLE.json --blob FILE    (a blob signature)
// The key is found by the bundle's hint. For a statement, the subject digest
// is checked here (the library checks only the envelope's signature).
const fs = require('fs'), crypto = require('crypto');
const { bundleFromJSON } = require('@sigstore/bundle');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');
const [pubPath, bundlePath, target, blobPath] = process.argv.slice(2);
const publicKey = crypto.createPublicKey(fs.readFileSync(pubPath));
const hint = crypto.createHash('sha256')
  .update(publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundlePath, 'utf8')));
const root = { certificateAuthorities: [], timestampAuthorities: [], tlogs: [], ctlogs: [] };
const trust = toTrustMaterial(root, (h) => {
  if (h !== hint) throw new Error(`unknown key hint ${h}`);
  return { publicKey, validFor: () => true };
});
new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 })
  .verify(toSignedEntity(bundle, target === '--blob' ? fs.readFileSync(blobPath) : undefined));
if (bundle.content.$case === 'dsseEnvelope') {
  const env = bundle.content.dsseEnvelope;
  if (env.payloadType !== 'application/vnd.in-toto+json') throw new Error('not in-toto');
  const st = JSON.parse(env.payload.toString('utf8'));
  const [alg, hex] = target.split(':');
  if (!st.subject.some((s) => s.digest && s.digest[alg] === hex)) throw new Error('subject mismatch');
  console.log('verified', st.predicateType, JSON.stringify(st.subject));
} else {
  console.log('verified blob signature');
}
