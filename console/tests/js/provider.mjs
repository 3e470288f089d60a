// A real OpenID provider for the console's tests: panva's oidc-provider
// (certified), one Provider per agency mounted at /<agency> on one port, so
// every agency's issuer is http://127.0.0.1:<port>/<agency>, as the test
// federation file says. Each signs with that agency's development Ed25519
// key (the private PEM the federation generated), so its JWT access tokens
// are exactly what the gateway and the nodes verify: aud the federation's,
// and the agency and roles claims.
//
//   node provider.mjs <config.json>
//
// config.json: { port, audience, client_id, console, access_token_ttl,
//   agencies: [{ id, key_file, kid }], users: [{ agency, sub, name, roles }] }
//
// Sign-in is the provider's development interaction (a login form; any
// password). Consent is pre-granted. Refresh tokens are always issued.
// For the revocation test, POST /__admin/revoke?agency=&sub= destroys that
// user's grants at that agency's provider: their refresh tokens stop
// working, as when an administrator disables an account.
import fs from 'node:fs';
import http from 'node:http';
import { createPrivateKey } from 'node:crypto';
import Provider from 'oidc-provider';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const base = `http://127.0.0.1:${config.port}`;
const RESOURCE = 'urn:survivor-exchange';
const providers = new Map();
// agency -> sub -> Set of grant IDs
const grants = new Map();

// The federation writes PKCS#8 v2 (with the public key), which OpenSSL's
// decoder in some Node releases refuses: rebuild the v1 document from the
// 32-byte seed (RFC 8410) and import that.
function ed25519Key(pem) {
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const marker = Buffer.from([0x04, 0x22, 0x04, 0x20]);
  const at = der.indexOf(marker);
  if (at < 0) throw new Error('not an Ed25519 PKCS#8 key');
  const seed = der.subarray(at + marker.length, at + marker.length + 32);
  const v1 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  return createPrivateKey({ key: v1, format: 'der', type: 'pkcs8' });
}

for (const agency of config.agencies) {
  const jwk = ed25519Key(fs.readFileSync(agency.key_file, 'utf8')).export({ format: 'jwk' });
  const users = config.users.filter((u) => u.agency === agency.id);
  const provider = new Provider(`${base}/${agency.id}`, {
    clients: [{
      client_id: config.client_id,
      token_endpoint_auth_method: 'none',
      redirect_uris: [`${config.console}/auth/callback`],
      post_logout_redirect_uris: [`${config.console}/`],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      id_token_signed_response_alg: 'EdDSA',
    }],
    jwks: { keys: [{ ...jwk, kid: agency.kid, alg: 'EdDSA', use: 'sig' }] },
    enabledJWA: {
      idTokenSigningAlgValues: ['EdDSA'],
    },
    scopes: ['openid', 'profile', 'offline_access', 'exchange'],
    claims: { openid: ['sub'], profile: ['name'] },
    pkce: { required: () => true },
    cookies: { keys: ['console-tests-only-not-a-secret'] },
    ttl: {
      AccessToken: config.access_token_ttl,
      IdToken: config.access_token_ttl,
      RefreshToken: 3600,
      Session: 3600,
      Grant: 3600,
      Interaction: 600,
      AuthorizationCode: 60,
    },
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'exchange',
          audience: config.audience,
          accessTokenTTL: config.access_token_ttl,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'EdDSA' } },
        }),
      },
    },
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    findAccount: async (ctx, sub) => {
      const user = users.find((u) => u.sub === sub);
      if (!user) return undefined;
      return { accountId: sub, claims: async () => ({ sub, name: user.name }) };
    },
    extraTokenClaims: async (ctx, token) => {
      if (token.kind !== 'AccessToken') return undefined;
      const user = users.find((u) => u.sub === token.accountId);
      return user ? { agency: agency.id, roles: user.roles } : undefined;
    },
    loadExistingGrant: async (ctx) => {
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) {
        const existing = await ctx.oidc.provider.Grant.find(grantId);
        if (existing) return existing;
      }
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid profile offline_access');
      grant.addResourceScope(RESOURCE, 'exchange');
      const id = await grant.save();
      const byUser = grants.get(agency.id) ?? new Map();
      grants.set(agency.id, byUser);
      const ids = byUser.get(ctx.oidc.session.accountId) ?? new Set();
      ids.add(id);
      byUser.set(ctx.oidc.session.accountId, ids);
      return grant;
    },
  });
  provider.on('server_error', (ctx, err) => console.error(`${agency.id}: server_error`, err));
  providers.set(agency.id, provider);
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, base);
  if (req.method === 'POST' && url.pathname === '/__admin/revoke') {
    const agency = url.searchParams.get('agency');
    const sub = url.searchParams.get('sub');
    const provider = providers.get(agency);
    const ids = grants.get(agency)?.get(sub) ?? new Set();
    let destroyed = 0;
    for (const id of ids) {
      const grant = await provider.Grant.find(id);
      if (grant) { await grant.destroy(); destroyed += 1; }
    }
    grants.get(agency)?.delete(sub);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ destroyed }));
    return;
  }
  const [, agency] = url.pathname.split('/');
  const provider = providers.get(agency);
  if (!provider) {
    res.writeHead(404);
    res.end('unknown agency');
    return;
  }
  // Mounted as Express would mount it: the provider sees the path below
  // its prefix and the original URL beside it.
  req.originalUrl = req.url;
  req.url = req.url.slice(agency.length + 1) || '/';
  provider.callback()(req, res);
});
server.listen(config.port, '127.0.0.1', () => {
  console.log(`oidc-provider ready on ${base}`);
});
