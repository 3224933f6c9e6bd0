"""Checks deploy/compose.yaml without a Docker engine: it parses, every
service uses a defined image or build, every named volume and dependency
exists, every ROSTER_* variable is one `roster` documents, every Roster
service runs a role the entrypoint knows, and nginx is in the roster group.
Usage: check-compose.py compose.yaml"""
import re
import sys
from pathlib import Path

import yaml

path = Path(sys.argv[1])
doc = yaml.safe_load(path.read_text())
errors = []
repo = path.resolve().parent.parent
config_swift = (repo / "Sources/RosterRuntime/Config.swift").read_text()
known_vars = set(re.findall(r'\("(ROSTER_[A-Z_]+)"', config_swift))
roles = {"provisioning", "deprovisioning", "notifications", "migrate"}
services = doc.get("services") or {}
volumes = set((doc.get("volumes") or {}).keys())
if not services:
    errors.append("no services")
for name, svc in services.items():
    if "image" not in svc and "build" not in svc:
        errors.append(f"{name}: neither image nor build")
    for v in svc.get("volumes", []):
        source = v.split(":")[0] if isinstance(v, str) else v.get("source")
        if not source.startswith((".", "/")) and source not in volumes:
            errors.append(f"{name}: volume {source!r} is not declared")
        if source.startswith("."):
            if not (path.parent / source).exists():
                errors.append(f"{name}: bind source {source!r} does not exist")
    deps = svc.get("depends_on", [])
    for dep in (deps.keys() if isinstance(deps, dict) else deps):
        if dep not in services:
            errors.append(f"{name}: depends on unknown service {dep!r}")
    env = svc.get("environment", {}) or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    for key in env:
        if key.startswith("ROSTER_") and key not in known_vars:
            errors.append(f"{name}: {key} is not a variable roster reads")
    image = str(svc.get("image", ""))
    if image.startswith("roster"):
        cmd = svc.get("command", [])
        role = cmd[0] if cmd else "provisioning"
        if role not in roles:
            errors.append(f"{name}: role {role!r} is not one the entrypoint accepts")
        build = svc.get("build", {})
        dockerfile = (path.parent / build.get("context", ".") / build.get("dockerfile", "Dockerfile")).resolve()
        if not dockerfile.exists():
            errors.append(f"{name}: Dockerfile {dockerfile} does not exist")
nginx = services.get("nginx")
if nginx and not str(nginx.get("user", "")).endswith(":10001"):
    errors.append("nginx: must run with group 10001 to open the 0660 socket")
if errors:
    print("compose.yaml problems:\n  " + "\n  ".join(errors))
    sys.exit(1)
print(f"compose.yaml ok: {len(services)} services, {len(volumes)} volumes, variables checked against {len(known_vars)} documented ones")
