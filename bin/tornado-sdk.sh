# Sourced by ./tornado-lora, ./build, .ci/run and ./setup-tornado.sh: the one place that finds the TornadoVM SDK.
#
#   tl_use_sdk NAME   TORNADOVM_HOME when it is set (and when it is not an SDK: prints why, naming it, and exits
#                     the calling script: never another SDK in its place), else the first SDK at the usual
#                     install places (TL_SDK_PLACES). Exports TORNADOVM_HOME as that SDK's absolute path, or unsets
#                     it when there is none, and sets TL_SDK_NOTE: which SDK and how it was found, or where it
#                     looked. Returns 0 with an SDK, 1 without.
#   tl_sdk_note NAME  prints TL_SDK_NOTE to stderr, prefixed with NAME.

# The usual install places, in order (globs; a folder is an SDK when tl_is_sdk says so).
# The per-user places only when HOME is set (a service or `env -i` may have none).
TL_SDK_PLACES=(/opt/tornadovm-sdk "/opt/tornadovm*" "/usr/local/tornadovm*")
[ -n "${HOME:-}" ] && TL_SDK_PLACES+=("$HOME/tornadovm-sdk" "$HOME/tornadovm*" "$HOME/TornadoVM*/bin/sdk")

# An SDK is a folder with tornado-argfile and the API jar.
tl_is_sdk() { [ -f "$1/tornado-argfile" ] && ls "$1"/share/java/tornado/tornado-api-*.jar >/dev/null 2>&1; }

# What a folder lacks to be an SDK, for messages.
tl_why_not_sdk() {
  if [ ! -e "$1" ]; then echo "it does not exist"
  elif [ ! -d "$1" ]; then echo "it is not a folder"
  elif [ ! -f "$1/tornado-argfile" ]; then echo "it has no tornado-argfile"
  else echo "it has no share/java/tornado/tornado-api-*.jar"
  fi
}

tl_use_sdk() {
  local name=$1 d pattern
  if [ -n "${TORNADOVM_HOME:-}" ]; then
    if ! tl_is_sdk "$TORNADOVM_HOME"; then
      echo "$name: TORNADOVM_HOME=$TORNADOVM_HOME is not a TornadoVM SDK: $(tl_why_not_sdk "$TORNADOVM_HOME")" \
           "(an SDK is the folder holding tornado-argfile; unset TORNADOVM_HOME to look in the usual places:" \
           "$(tl_sdk_places))" >&2
      exit 1
    fi
    TORNADOVM_HOME=$(cd "$TORNADOVM_HOME" && pwd)
    export TORNADOVM_HOME
    TL_SDK_NOTE="TornadoVM SDK $TORNADOVM_HOME (from TORNADOVM_HOME)"
    return 0
  fi
  for pattern in "${TL_SDK_PLACES[@]}"; do
    for d in $pattern; do  # unquoted: the glob expands; a pattern matching nothing stays as it is and is no SDK
      if [ -d "$d" ] && tl_is_sdk "$d"; then
        TORNADOVM_HOME=$(cd "$d" && pwd)
        export TORNADOVM_HOME
        TL_SDK_NOTE="TornadoVM SDK $TORNADOVM_HOME (found in the usual places; TORNADOVM_HOME is unset)"
        return 0
      fi
    done
  done
  unset TORNADOVM_HOME
  TL_SDK_NOTE="no TornadoVM SDK (TORNADOVM_HOME is unset; looked in $(tl_sdk_places))"
  return 1
}

tl_sdk_places() {
  local IFS=,
  if [ -n "${HOME:-}" ]; then echo "${TL_SDK_PLACES[*]}" | sed "s|,|, |g; s|$HOME/|~/|g"
  else echo "${TL_SDK_PLACES[*]}" | sed "s|,|, |g"; fi
}

tl_sdk_note() { echo "$1: $TL_SDK_NOTE" >&2; }

# The tornado-api version of an SDK, e.g. 5.2.0-jdk25.
tl_api_version() {
  local jar; jar=$(ls "$1"/share/java/tornado/tornado-api-*.jar | head -1)
  jar=$(basename "$jar" .jar); echo "${jar#tornado-api-}"
}

# tornado-api is not on Maven Central: installs the SDK's jar into the local Maven repository when it is missing.
# tl_install_api SDK [MAVEN_ARGS...]: the repository is -Dmaven.repo.local from MAVEN_ARGS, else from
# .mvn/maven.config, else TL_MAVEN_REPO, else ~/.m2/repository.
tl_install_api() {
  local sdk=$1 version jar repo="" a; shift
  version=$(tl_api_version "$sdk"); jar=$(ls "$sdk"/share/java/tornado/tornado-api-"$version".jar)
  for a in "$@" $(cat .mvn/maven.config 2>/dev/null); do
    case "$a" in -Dmaven.repo.local=*) [ -n "$repo" ] || repo=${a#-Dmaven.repo.local=} ;; esac
  done
  repo=${repo:-${TL_MAVEN_REPO:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.m2/repository}}
  if [ ! -f "$repo/io/github/beehive-lab/tornado-api/$version/tornado-api-$version.jar" ]; then
    echo "Installing tornado-api $version from the SDK into $repo"
    mvn -B -q -ntp -Dmaven.repo.local="$repo" install:install-file -Dfile="$jar" -DgroupId=io.github.beehive-lab \
        -DartifactId=tornado-api -Dversion="$version" -Dpackaging=jar -DgeneratePom=true
  fi
}
