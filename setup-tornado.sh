#!/usr/bin/env bash
# Wires an installed TornadoVM SDK into this project: finds it, checks that its JDK matches, lists its devices,
# makes its API jar resolvable by Maven, builds tornado-tasks/ and prints the commands that use it.
# It never downloads or builds TornadoVM: install the SDK first (see the message printed without one).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$root"

die() { echo "setup-tornado.sh: $*" >&2; exit 1; }

no_sdk() {
  cat >&2 <<'MSG'
setup-tornado.sh: no TornadoVM SDK found.
  Looked at $TORNADOVM_HOME, /opt/tornadovm-sdk, /opt/tornadovm*, /usr/local/tornadovm*, ~/tornadovm*, ~/TornadoVM*/bin/sdk.
  Install TornadoVM 5.2.0 (jdk25 flavour) from its official distribution, https://github.com/beehive-lab/TornadoVM
  (release SDK archives, or the installer described in its INSTALL_FROM_SOURCE.md), with a backend for your device
  (opencl for CPUs via PoCL, Intel/AMD/NVIDIA GPUs; ptx for NVIDIA; spirv for Intel Level Zero). Then:
      export TORNADOVM_HOME=/path/to/the/sdk      # the folder that holds tornado-argfile
      ./setup-tornado.sh
  On a CPU-only Debian machine the OpenCL device is PoCL: apt-get install pocl-opencl-icd ocl-icd-opencl-dev
MSG
  exit 1
}

. "$root/bin/tornado-sdk.sh"
sdk=$(tl_find_sdk) || no_sdk
echo "TornadoVM SDK: $sdk"
version=$(tl_api_version "$sdk")
echo "tornado-api:   $version"

. "$root/bin/jdk.sh"
java_major=$("$JAVA_HOME/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
sdk_jdk=$(echo "$version" | sed -n 's/.*-jdk\([0-9]*\).*/\1/p')
if [ -n "$sdk_jdk" ] && [ "$sdk_jdk" != "$java_major" ]; then
  for d in /usr/lib/jvm/*; do
    v=$("$d/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' || true)
    if [ "$v" = "$sdk_jdk" ] && [ -x "$d/bin/javac" ]; then export JAVA_HOME=$d PATH="$d/bin:$PATH"; java_major=$v; break; fi
  done
fi
[ -z "$sdk_jdk" ] || [ "$sdk_jdk" = "$java_major" ] \
  || die "the SDK is built for JDK $sdk_jdk but the JDK found is $java_major ($JAVA_HOME); install JDK $sdk_jdk or set JAVA_HOME"
echo "JDK:           $JAVA_HOME (Java $java_major)"

echo "Devices:"
"$JAVA_HOME/bin/java" @"$sdk/tornado-argfile" uk.ac.manchester.tornado.drivers.TornadoDeviceQuery 2>&1 \
  | grep -v '^WARNING' | sed 's/^/  /' || die "the SDK could not list its devices (see above)"

tl_install_api "$sdk"

echo "Building tornado-tasks (with the library, in one reactor)..."
export TORNADOVM_HOME=$sdk
mvn -B -q -ntp -DskipTests -Dtornado.version="$version" install
echo
cat <<EOF2
Ready. With the SDK in your environment:
  export TORNADOVM_HOME=$sdk
  ./build test                                   # JVM tests, then the TornadoVM tests on the default device
  ./tornado-lora devices                         # lists the JVM backend and every TornadoVM device
  ./tornado-lora eval --device tornado:0:0 --checkpoint C.safetensors --input X.safetensors --output O.safetensors
  ./tornado-lora bench --device jvm --device tornado:0:0
Kernels print their device with TORNADO_LORA_JAVA_OPTS=-Dtornado.threadInfo=True.
EOF2
