# Sourced by ./build and ./setup-tornado.sh: locating an installed TornadoVM SDK and making its API resolvable.

# An SDK is a folder with tornado-argfile and the API jar.
tl_is_sdk() { [ -f "$1/tornado-argfile" ] && ls "$1"/share/java/tornado/tornado-api-*.jar >/dev/null 2>&1; }

# Prints the SDK folder: $TORNADOVM_HOME, then the usual install locations; nothing when there is none.
tl_find_sdk() {
  local d
  for d in "${TORNADOVM_HOME:-}" /opt/tornadovm-sdk /opt/tornadovm* /usr/local/tornadovm* "$HOME"/tornadovm* "$HOME"/TornadoVM*/bin/sdk; do
    if [ -n "$d" ] && [ -d "$d" ] && tl_is_sdk "$d"; then (cd "$d" && pwd); return 0; fi
  done
  return 1
}

# The tornado-api version of an SDK, e.g. 5.2.0-jdk25.
tl_api_version() {
  local jar; jar=$(ls "$1"/share/java/tornado/tornado-api-*.jar | head -1)
  jar=$(basename "$jar" .jar); echo "${jar#tornado-api-}"
}

# tornado-api is not on Maven Central: installs the SDK's jar into the local Maven repository when it is missing.
tl_install_api() {
  local sdk=$1 version jar repo
  version=$(tl_api_version "$sdk"); jar=$(ls "$sdk"/share/java/tornado/tornado-api-"$version".jar)
  repo=${TL_MAVEN_REPO:-$HOME/.m2/repository}
  if [ ! -f "$repo/io/github/beehive-lab/tornado-api/$version/tornado-api-$version.jar" ]; then
    echo "Installing tornado-api $version from the SDK into $repo"
    mvn -B -q -ntp install:install-file -Dfile="$jar" -DgroupId=io.github.beehive-lab -DartifactId=tornado-api \
        -Dversion="$version" -Dpackaging=jar -DgeneratePom=true
  fi
}
