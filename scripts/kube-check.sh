#!/usr/bin/env bash
# kube-check.sh - `make kube-check` (run by `make test`): builds the image from the Dockerfile,
# plays deploy/kubernetes/ with `podman kube play` against a PostgreSQL this script starts, reads
# /healthz and /readyz from inside the pod, checks the pod runs as the manifest says, and tears it
# all down. Skips (exit 0, reason printed) only where podman cannot run it on this machine.
#
# The pod runs in a private network namespace of this script's (unshare --net), with the
# PostgreSQL cluster on that namespace's 127.0.0.1: nothing binds a port of the host, so
# several runs and a `make run` on port 8080 do not collide. The pod reaches that PostgreSQL
# through slirp4netns (10.0.2.2 is the namespace's loopback). Podman's objects (pod names, the
# secret) are machine-wide, so runs take turns on a lock.
#
# What podman (4.3, Debian bookworm) does differently from a Kubernetes cluster, and how the
# check deals with it (docs/deployment.md says the same):
# - It runs a Deployment's replicas side by side on this host and publishes each containerPort
#   on the host's port of the same number: the second replica cannot bind 8080. The check plays
#   the Deployment with `replicas: 1` (newer podman makes one pod whatever the count).
# - A `kind: Secret` played by podman 4.3 is stored in a form its own envFrom cannot read back
#   ("secret dealsync is not valid JSON"). The check fills in secret.example.yaml and creates the
#   podman secret from it in the form podman reads (a JSON object of base64 values).
# - It applies the pod's restart policy to the init container too: with a Deployment's
#   (Always) it starts `dealsync migrate` again after it succeeds, and then fails to remove it
#   ("failed to remove once init container ... as it is running"). Kubernetes never restarts an
#   init container that succeeded; the check plays the pod with restartPolicy: OnFailure.
# - Probes become podman health checks run by systemd timers (none here), with curl inside the
#   image (the image has no curl): the check reads the probes' URLs itself.
set -euo pipefail
cd "$(dirname "$0")/.."
KUBE=deploy/kubernetes
IMAGE=localhost/dealsync:latest # the manifests' image
POD=dealsync-pod-0              # podman names a Deployment's pod <name>-pod-<n>
LOCK=/var/tmp/dealsync-kube-check.lock
say() { echo "kube-check: $*" >&2; }
skip() {
  say "SKIP: $*"
  exit 0
}
fail() {
  say "FAIL: $*"
  exit 1
}

# ---- phase 2: inside the private network namespace (re-executed by phase 1 below) -----------
if [ "${1:-}" = --in-netns ]; then
  tmp=$2
  ip link set lo up
  port=5432
  cleanup() {
    podman kube down "$tmp/play.yaml" >/dev/null 2>&1 || true
    podman pod rm -f "$POD" >/dev/null 2>&1 || true
    podman secret rm dealsync >/dev/null 2>&1 || true
    scripts/pg.sh stop "$tmp/pg" || true
  }
  trap cleanup EXIT
  DATABASE_URL=$(PG_FSYNC=off scripts/pg.sh start "$tmp/pg" "$port")
  say "PostgreSQL on the namespace's $DATABASE_URL; the pod reaches it at 10.0.2.2:$port"

  # The Deployment as shipped, but one replica and the pod's restart policy OnFailure (see
  # above); fail if the lines these edits expect ever change.
  [ "$(grep -c -e '^  replicas: 2$' -e '^    spec:$' "$KUBE/deployment.yaml")" = 2 ] ||
    fail "$KUBE/deployment.yaml: not one 'replicas: 2' line and one pod 'spec:' line"
  sed -e 's/^  replicas: 2$/  replicas: 1/' -e 's/^    spec:$/&\n      restartPolicy: OnFailure/' \
    "$KUBE/deployment.yaml" >"$tmp/play.yaml"

  # The Secret template filled in: every key it names must be one of dealsync's variables, and
  # the values set here must be keys of the template (the pods read nothing else).
  python3 - "$KUBE/secret.example.yaml" "$tmp/secret.json" <<EOF
import base64, json, re, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
assert len(docs) == 1 and docs[0]["kind"] == "Secret", "one Secret expected"
data = docs[0]["stringData"]
known = set(re.findall(r'VAR\("([A-Z0-9_]+)"', open("service/config.c").read()))
for k in data:
    assert k in known, k + " in the Secret template is none of dealsync's variables"
values = {
    "DATABASE_URL": "postgresql://dealsync@10.0.2.2:$port/dealsync",
    "PUBLIC_BASE_URL": "https://dealsync.example.com",
    "SALESFORCE_ORG_ID": "00D000000000001EAA",
    "HUBSPOT_CLIENT_SECRET": "kube-check-client-secret",
}
for k in values:
    assert k in data, "the template has no " + k
data.update(values)
json.dump({k: base64.b64encode(str(v).encode()).decode() for k, v in data.items()},
          open(sys.argv[2], "w"))
EOF
  podman secret rm dealsync >/dev/null 2>&1 || true
  podman secret create dealsync "$tmp/secret.json" >/dev/null

  say "podman kube play $KUBE/deployment.yaml (replicas: 1, restartPolicy: OnFailure)"
  # podman logs its missing systemd (health check timers) as errors; kept in the log.
  if ! podman kube play --network slirp4netns:allow_host_loopback=true "$tmp/play.yaml" \
    >"$tmp/play.log" 2>&1; then
    grep -v systemd "$tmp/play.log" >&2
    podman logs "$POD-dealsync" >&2 2>&1 || true
    fail "podman kube play failed"
  fi

  infra=$(podman pod inspect -f '{{.InfraContainerID}}' "$POD")
  pid=$(podman inspect -f '{{.State.Pid}}' "$infra")
  # GET url inside the pod's network namespace; prints "status body".
  pod_get() {
    nsenter -t "$pid" -n curl -s -m 5 -o "$tmp/body" -w '%{http_code}' "http://127.0.0.1:8080$1" \
      2>/dev/null && printf ' %s' "$(cat "$tmp/body")"
  }
  # /readyz answers 200 only when the database answers and the migrations are current: the init
  # container (`dealsync migrate`) must have run.
  ready=""
  for _ in $(seq 1 600); do
    ready=$(pod_get /readyz || true)
    case "$ready" in 200*) break ;; esac
    state=$(podman inspect -f '{{.State.Status}}' "$POD-dealsync" 2>/dev/null || echo gone)
    [ "$state" = exited ] || [ "$state" = gone ] && {
      podman logs "$POD-dealsync" >&2 2>&1 || true
      fail "the dealsync container is $state"
    }
    sleep 0.2
  done
  case "$ready" in 200*) ;; *)
    podman logs "$POD-dealsync" >&2 2>&1 || true
    fail "GET /readyz did not answer 200 within 120 s (last: '${ready:-no answer}')"
    ;;
  esac
  say "GET /readyz: $ready"
  health=$(pod_get /healthz || true)
  [ "$health" = '200 {"status":"ok"}' ] || fail "GET /healthz answered '$health'"
  say "GET /healthz: $health"

  # The pod as the manifest asks: non-root, read-only root file system, no capabilities.
  user=$(podman inspect -f '{{.Config.User}}' "$POD-dealsync")
  ro=$(podman inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$POD-dealsync")
  caps=$(podman inspect -f '{{.EffectiveCaps}}' "$POD-dealsync")
  [ "$user" = 10001:10001 ] || fail "the container runs as '$user', not 10001:10001"
  [ "$ro" = true ] || fail "the root file system is not read-only"
  [ "$caps" = "[]" ] || fail "the container keeps capabilities $caps"
  # The migrations ran once, from the init container.
  n=$(/usr/lib/postgresql/15/bin/psql "postgresql://dealsync@127.0.0.1:$port/dealsync" -Atqc \
    "select count(*) from schema_migrations" 2>/dev/null || echo 0)
  [ "$n" -gt 0 ] || fail "no migration recorded in the database"
  say "OK: user $user, read-only root, no capabilities, $n migrations applied by the init container"
  exit 0
fi

# ---- phase 1: can podman run it here? build, then play in a private network namespace -------
command -v podman >/dev/null || skip "podman is not installed (Debian: apt-get install podman runc slirp4netns)"
command -v slirp4netns >/dev/null || skip "slirp4netns is not installed: the pod could not reach PostgreSQL"
[ "$(id -u)" -eq 0 ] || skip "not root: rootless podman cannot make the private network namespace this check runs the pod in"
[ -c /dev/net/tun ] || skip "no /dev/net/tun: slirp4netns cannot give the pod a network"
unshare --net true 2>/dev/null || skip "cannot make a network namespace (unshare --net) here"

# Podman settings that work on this project's machines (a cgroup v1 hybrid kernel, no systemd,
# rlimits that cannot be raised) and on others: cgroups managed by podman itself, runc, no
# default ulimits. A CONTAINERS_CONF of the caller's wins.
if [ -z "${CONTAINERS_CONF:-}" ]; then
  conf_dir=/var/tmp/dealsync-container-base
  mkdir -p "$conf_dir"
  printf '[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\nruntime = "runc"\n' \
    >"$conf_dir/containers.conf.$$"
  mv "$conf_dir/containers.conf.$$" "$conf_dir/containers.conf" # whole, for a run beside this one
  export CONTAINERS_CONF=$conf_dir/containers.conf
fi
podman info >/dev/null 2>&1 || skip "podman cannot run here: $(podman info 2>&1 | tail -n 1)"

exec 9>"$LOCK"
if ! flock -w 900 9; then fail "another kube-check held $LOCK for 15 minutes"; fi

start=$(date +%s)
# The base image, pulled or made without a registry (machines with no Docker Hub).
scripts/container-base.sh || fail "the Dockerfile's base image is missing and could not be made"
# chroot isolation: the build's RUN steps need no cgroup or network namespace of their own.
build_log="${TMPDIR:-/tmp}/kube-check-build.$$"
podman build --format docker --isolation=chroot --network=host -t "$IMAGE" . >/dev/null 2>"$build_log" || {
  tail -n 30 "$build_log" >&2
  rm -f "$build_log"
  fail "the image build failed"
}
rm -f "$build_log"
size=$(podman image inspect -f '{{.Size}}' "$IMAGE")
say "image $IMAGE built in $(($(date +%s) - start)) s, $((size / 1000000)) MB"

tmp=$(mktemp -d /tmp/dealsync-kube-check.XXXXXX)
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
status=0
unshare --net "$0" --in-netns "$tmp" || status=$?
[ $status -eq 0 ] && say "passed in $(($(date +%s) - start)) s"
exit $status
