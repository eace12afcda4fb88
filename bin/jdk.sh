# Sourced by ./tornado-lora and ./build: exports JAVA_HOME as a JDK >= 21 (JAVA_HOME if suitable, else the
# newest under the usual install locations) and puts it first on PATH. Prints why and fails when none is found.

_tl_java_major() {  # major version of the JDK at $1, or 0
  local v
  v=$("$1/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
  [ -n "$v" ] && [ -x "$1/bin/javac" ] && echo "${v%%.*}" || echo 0
}

_tl_find_jdk() {
  local best="" best_v=0 d v homes=()
  # HOME may be unset (a service, `env -i`): the per-user places are then skipped, not the search.
  [ -n "${HOME:-}" ] && homes=("$HOME"/.sdkman/candidates/java/* "$HOME"/.jdks/*)
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
    v=$(_tl_java_major "$JAVA_HOME")
    if [ "$v" -ge 21 ]; then echo "$JAVA_HOME"; return 0; fi
  fi
  for d in /usr/lib/jvm/* /opt/java/* /opt/jdk* /usr/local/jdk* /Library/Java/JavaVirtualMachines/*/Contents/Home \
           ${homes[@]+"${homes[@]}"}; do
    [ -x "$d/bin/java" ] || continue
    [ -L "$d" ] && continue
    v=$(_tl_java_major "$d")
    if [ "$v" -ge 21 ] && [ "$v" -gt "$best_v" ]; then best=$d; best_v=$v; fi
  done
  if [ -z "$best" ] && command -v java >/dev/null 2>&1; then
    d=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
    v=$(_tl_java_major "$d")
    [ "$v" -ge 21 ] && best=$d
  fi
  [ -n "$best" ] && echo "$best"
}

if ! _tl_jdk=$(_tl_find_jdk) || [ -z "$_tl_jdk" ]; then
  echo "tornado-lora: no JDK 21 or newer found (looked at JAVA_HOME and /usr/lib/jvm). Install one, e.g." >&2
  echo "  apt-get install openjdk-21-jdk   (or any JDK >= 21) and/or set JAVA_HOME" >&2
  return 1 2>/dev/null || exit 1
fi
export JAVA_HOME=$_tl_jdk
export PATH="$JAVA_HOME/bin:$PATH"
# Maven's own libraries call sun.misc.Unsafe; JDK 24+ warns about it on every build unless told to allow it.
if [ "$(_tl_java_major "$JAVA_HOME")" -ge 24 ]; then
  case "${MAVEN_OPTS:-}" in *sun-misc-unsafe*) ;; *) export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow" ;; esac
fi
unset _tl_jdk
