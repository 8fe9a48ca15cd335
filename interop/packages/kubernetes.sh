#!/usr/bin/env bash
# Validates the Kubernetes manifests in deploy/kubernetes, offline: each resource against the
# Kubernetes OpenAPI schemas bundled in the pinned kubernetes-validate (strict: an unknown or
# misspelt field fails), for the oldest and the newest Kubernetes we claim (K8S_VERSIONS,
# default "1.33.0 1.37.0"); then what the schemas cannot say: the kustomization lists every
# resource, 2+ replicas, probes on /healthz, keys, tokens and the Postgres URL from the Secret,
# a locked-down securityContext, requests and limits, selectors that match, the image tag at
# Cargo.toml's version, and only placeholders in secret.example.yaml.
# Ends with "N passed, N failed"; exits 1 on any failure.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=interop/packages/manifests-venv.sh
source "$here/manifests-venv.sh"
dir="$manifests_root/deploy/kubernetes"
resources=()
for file in "$dir"/*.yaml; do
    [[ "$(basename "$file")" == kustomization.yaml ]] || resources+=("$file")
done
passed=0
failed=0
for version in ${K8S_VERSIONS:-1.33.0 1.37.0}; do
    if timeout 120 "$manifests_venv/bin/kubernetes-validate" --strict --quiet -k "$version" "${resources[@]}"; then
        echo "kubernetes: ok: ${#resources[@]} files validate (strict) against Kubernetes $version"
        passed=$((passed + 1))
    else
        echo "kubernetes: FAIL: schema validation against Kubernetes $version (above)"
        failed=$((failed + 1))
    fi
done
counts="$(mktemp)"
trap 'rm -f "$counts"' EXIT
set +e
timeout 60 "$manifests_python" - "$dir" "$manifests_root/Cargo.toml" "$counts" <<'PY'
import sys, tomllib
from pathlib import Path
import yaml

folder, cargo = Path(sys.argv[1]), Path(sys.argv[2])
version = tomllib.loads(cargo.read_text())["package"]["version"]
docs = {}
for path in sorted(folder.glob("*.yaml")):
    for doc in yaml.safe_load_all(path.read_text()):
        docs[(doc["kind"], path.name)] = doc
by_kind = {kind: doc for (kind, _), doc in docs.items()}
passes, failures = 0, 0

def check(good, what):
    global passes, failures
    print(f"kubernetes: {'ok' if good else 'FAIL'}: {what}")
    passes += bool(good)
    failures += not good

kustomization = by_kind["Kustomization"]
listed = set(kustomization["resources"])
present = {name for (kind, name) in docs if kind not in ("Kustomization", "Secret")}
check(listed == present, f"kustomization lists {sorted(listed)} = the resource files {sorted(present)}")
check("secret.example.yaml" not in listed, "the example Secret is not applied by the kustomization")

deployment = by_kind["Deployment"]
spec = deployment["spec"]
pod = spec["template"]["spec"]
labels = spec["template"]["metadata"]["labels"]
check(spec["replicas"] >= 2, f"{spec['replicas']} replicas")
check(spec["selector"]["matchLabels"].items() <= labels.items(), "Deployment selector matches its pods")
[container] = pod["containers"]
check(container["image"].endswith(f":{version}"), f"image {container['image']} is at Cargo.toml's {version}")
env = {e["name"]: e for e in container["env"]}
for probe in ("readinessProbe", "livenessProbe"):
    get = container.get(probe, {}).get("httpGet", {})
    check(get.get("path") == "/healthz" and get.get("port") in ("http", 8080), f"{probe} GETs /healthz")
check(env.get("VULTR_MCP_HTTP", {}).get("value") == "0.0.0.0:8080", "HTTP mode on 0.0.0.0:8080")
check(any(p["containerPort"] == 8080 for p in container["ports"]), "container port 8080")
secret_name = "vultr-inference-mcp"
for name in ("VULTR_API_KEY", "VULTR_MCP_CONVERSATIONS"):
    ref = env.get(name, {}).get("valueFrom", {}).get("secretKeyRef", {})
    check(ref.get("name") == secret_name, f"{name} comes from the Secret {secret_name}")
check("value" not in env.get("VULTR_API_KEY", {}), "no key written in the Deployment")
tokens_path = env.get("VULTR_MCP_AUTH_TOKENS", {}).get("value", "")
mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
volumes = {v["name"]: v for v in pod["volumes"]}
tokens_mount = next((m for path, m in mounts.items() if tokens_path.startswith(path + "/")), None)
check(tokens_mount is not None and volumes[tokens_mount["name"]].get("secret", {}).get("secretName") == secret_name
      and tokens_mount.get("readOnly") is True,
      f"the tokens file {tokens_path} is mounted read-only from the Secret")
check(env.get("VULTR_MCP_PUBLIC_URL", {}).get("value", "").endswith("/mcp"), "VULTR_MCP_PUBLIC_URL set")
pod_security = pod.get("securityContext", {})
security = container.get("securityContext", {})
check(pod_security.get("runAsNonRoot") is True and pod_security.get("runAsUser", 0) > 0, "pod runs as non-root")
check(pod_security.get("seccompProfile", {}).get("type") == "RuntimeDefault", "seccomp RuntimeDefault")
check(security.get("allowPrivilegeEscalation") is False, "no privilege escalation")
check(security.get("readOnlyRootFilesystem") is True, "read-only root filesystem")
check(security.get("capabilities", {}).get("drop") == ["ALL"], "all capabilities dropped")
check(pod.get("automountServiceAccountToken") is False, "no service account token mounted")
writable = {path for path, m in mounts.items() if "emptyDir" in volumes[m["name"]]}
check({"/data", "/tmp"} <= writable, "/data and /tmp are emptyDirs (the root is read-only)")
resources = container.get("resources", {})
check(all(k in resources.get(part, {}) for part in ("requests", "limits") for k in ("cpu", "memory")),
      "cpu and memory requests and limits")
check(pod.get("terminationGracePeriodSeconds", 30) > 15, "grace period longer than preStop + drain (15 s)")

service = by_kind["Service"]
check(service["spec"]["selector"].items() <= labels.items(), "Service selects the pods")
check(any(p.get("targetPort") in ("http", 8080) for p in service["spec"]["ports"]), "Service targets port http")
pdb = by_kind["PodDisruptionBudget"]
check(pdb["spec"]["selector"]["matchLabels"].items() <= labels.items(), "PodDisruptionBudget selects the pods")
check(0 < pdb["spec"].get("minAvailable", 0) < spec["replicas"], "PodDisruptionBudget keeps one, lets one go")
ingress = by_kind["Ingress"]
backends = [p["backend"]["service"]["name"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]]
check(backends == [service["metadata"]["name"]] * len(backends) and backends, "Ingress routes to the Service")
check(bool(ingress["spec"].get("tls")), "Ingress terminates TLS")

secret = by_kind["Secret"]
check(secret["metadata"]["name"] == secret_name, f"secret.example.yaml is the Secret {secret_name}")
needed = {"vultr-api-key", "postgres-url", "tokens"}
check(needed <= set(secret.get("stringData", {})), f"secret.example.yaml has {sorted(needed)}")
check(all("REPLACE_WITH" in str(v) for v in secret.get("stringData", {}).values()) and "data" not in secret,
      "secret.example.yaml holds placeholders only")
used = {e["valueFrom"]["secretKeyRef"]["key"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
used |= {i["key"] for v in pod["volumes"] if "secret" in v for i in v["secret"].get("items", [])}
check(used <= set(secret.get("stringData", {})), f"keys the Deployment reads {sorted(used)} are in secret.example.yaml")
Path(sys.argv[3]).write_text(f"{passes} {failures}\n")
PY
status=$?
set -e
read -r policy_passed policy_failed <"$counts" || { policy_passed=0; policy_failed=1; }
[[ "$status" == 0 ]] || policy_failed=$((policy_failed > 0 ? policy_failed : 1))
passed=$((passed + policy_passed))
failed=$((failed + policy_failed))
echo "$passed passed, $failed failed"
[[ "$failed" == 0 ]]
