#!/usr/bin/env bash
# The Secrets of the Kubernetes demo overlay (deploy/kubernetes/overlays/demo),
# made fresh on this machine and never committed: a demo CA with the
# gateway's client certificate and each node's server certificate (mutual
# TLS), the ingress certificates, the demo CA for the demo identity
# provider's keys (a ConfigMap), random database passwords, each node's
# key-encryption key and audit-signing key. Writes one manifest per Secret
# into OUT_DIR (default target/k8s-demo-secrets), to apply before the
# overlay:
#
#   bash scripts/k8s-demo-secrets.sh
#   kubectl apply -f target/k8s-demo-secrets/namespaces.yaml
#   kubectl apply -f target/k8s-demo-secrets/
#   kubectl apply -k deploy/kubernetes/overlays/demo
#
# Needs openssl and kubectl (only to write the manifests: no cluster).
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-target/k8s-demo-secrets}
agencies=(shelter-north clinic-east)
for tool in openssl kubectl; do
  command -v "$tool" >/dev/null || { echo "k8s-demo-secrets.sh needs $tool" >&2; exit 1; }
done
umask 077
rm -rf "$out"
mkdir -p "$out/material"
m="$out/material"

# The demo CA (30 days), and a certificate signed by it: name, then its
# DNS names.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$m/ca.key" -out "$m/ca.crt" -days 30 \
  -subj "/CN=survivor-exchange demo CA" 2>/dev/null
issue() {
  local name=$1; shift
  local san=""
  for dns in "$@"; do san="${san:+$san,}DNS:$dns"; done
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$m/$name.key" -out "$m/$name.csr" -subj "/CN=$1" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$san" > "$m/$name.ext"
  openssl x509 -req -in "$m/$name.csr" -CA "$m/ca.crt" -CAkey "$m/ca.key" \
    -CAcreateserial -days 30 -extfile "$m/$name.ext" -out "$m/$name.crt" 2>/dev/null
}
secret() { # namespace name, then kubectl's --from-file/--from-literal arguments
  local namespace=$1 name=$2; shift 2
  kubectl create secret generic "$name" -n "$namespace" "$@" \
    --dry-run=client -o yaml > "$out/$namespace-$name.yaml"
}
tls_secret() { # namespace name cert key
  kubectl create secret tls "$2" -n "$1" --cert="$3" --key="$4" \
    --dry-run=client -o yaml > "$out/$1-$2.yaml"
}
password() { openssl rand -hex 24; }

# The namespaces, so the Secrets can be applied before the overlay.
{
  for namespace in survivor-exchange "${agencies[@]/#/exchange-}"; do
    echo "---"
    kubectl create namespace "$namespace" --dry-run=client -o yaml
  done
} > "$out/namespaces.yaml"

pg_password=$(password)
printf '%s' "$pg_password" > "$m/postgres-password"
secret survivor-exchange postgres-secrets --from-file=password="$m/postgres-password"

issue gateway exchange-gateway.survivor-exchange.svc
printf 'postgres://exchange:%s@postgres.survivor-exchange.svc:5432/gateway' "$pg_password" > "$m/gateway-database-url"
secret survivor-exchange gateway-secrets --from-file=database-url="$m/gateway-database-url"
secret survivor-exchange gateway-tls --from-file=tls.crt="$m/gateway.crt" \
  --from-file=tls.key="$m/gateway.key" --from-file=ca.crt="$m/ca.crt"
issue ingress exchange.example.org console.exchange.example.org idp.exchange.example.org
tls_secret survivor-exchange exchange-ingress-tls "$m/ingress.crt" "$m/ingress.key"

# The demo CA, which checks the demo identity provider's certificate (at the
# ingress) for every process that fetches its keys or signs in through it:
# the federation file's jwks_ca_file and the console's ca_file. Public, so a
# ConfigMap, in every namespace that mounts the federation file.
for namespace in survivor-exchange "${agencies[@]/#/exchange-}"; do
  kubectl create configmap identity-provider-keys -n "$namespace" \
    --from-file=demo-ca.pem="$m/ca.crt" --dry-run=client -o yaml \
    > "$out/$namespace-identity-provider-keys.yaml"
done

for agency in "${agencies[@]}"; do
  namespace="exchange-$agency"
  db=${agency//-/_}
  issue "$agency" "agency-node.$namespace.svc"
  printf 'postgres://exchange:%s@postgres.survivor-exchange.svc:5432/%s' "$pg_password" "$db" > "$m/$agency-database-url"
  printf 'postgres://exchange:%s@postgres.survivor-exchange.svc:5432/%s_keys' "$pg_password" "$db" > "$m/$agency-key-store-url"
  openssl rand 32 > "$m/$agency-kek"
  openssl genpkey -algorithm ed25519 -outform DER -out "$m/$agency-signing.pk8"
  secret "$namespace" agency-node-secrets \
    --from-file=database-url="$m/$agency-database-url" \
    --from-file=key-store-url="$m/$agency-key-store-url" \
    --from-file=key-encryption-key="$m/$agency-kek" \
    --from-file=node-signing-key.pk8="$m/$agency-signing.pk8"
  secret "$namespace" agency-node-tls --from-file=tls.crt="$m/$agency.crt" \
    --from-file=tls.key="$m/$agency.key" --from-file=ca.crt="$m/ca.crt"
  issue "$agency-portal" "portal.$agency.example.org"
  tls_secret "$namespace" agency-portal-tls "$m/$agency-portal.crt" "$m/$agency-portal.key"
done
# The material stays beside the manifests only as long as they are needed.
rm -rf "$m"
echo "Secrets of the demo overlay written to $out/"
