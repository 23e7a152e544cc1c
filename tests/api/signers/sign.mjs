// Signs a webhook delivery with the provider's own library, never with code of ours.
// stdin: {"provider": "github"|"standard-webhooks", "secret", "body", "id"?, "timestamp"?}
// stdout: the headers to send, as a JSON object.
import { sign } from '@octokit/webhooks-methods';
import { Webhook } from 'standardwebhooks';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const req = JSON.parse(input);
const headers = {};
if (req.provider === 'github') {
  headers['X-Hub-Signature-256'] = await sign(req.secret, req.body);
} else {
  const id = req.id ?? 'msg_' + Math.random().toString(36).slice(2);
  const when = new Date((req.timestamp ?? Math.floor(Date.now() / 1000)) * 1000);
  // whsec_ secrets are what the library expects; it base64-decodes them itself.
  headers['webhook-id'] = id;
  headers['webhook-timestamp'] = String(Math.floor(when.getTime() / 1000));
  headers['webhook-signature'] = new Webhook(req.secret).sign(id, when, req.body);
}
process.stdout.write(JSON.stringify(headers));
