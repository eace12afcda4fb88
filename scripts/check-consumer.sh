#!/usr/bin/env bash
# Checks the README's "Use it from Maven" section as a new user would follow it, from a fresh clone of this
# repository's committed HEAD:
#   1. the README's install command (./build install) in the clone;
#   2. a separate Maven project in a temporary folder that depends only on the documented coordinates
#      (dev.tornadolora:tornado-lora-core:0.1.0-SNAPSHOT) compiles the README's Library snippet, taken from the
#      README itself, and docs/library.md's "Fine-tuning from Java" example;
#   3. `mvn dependency:tree` of that project shows no picocli, xchart, progressbar or jline;
#   4. the snippet runs with plain `java -cp` (no --add-modules) and writes its PEFT folder.
# Usage: scripts/check-consumer.sh [--keep]   (--keep leaves the temporary folder for a look)
# The local Maven repository is the one Maven uses for this checkout (MAVEN_REPO overrides it); the clone installs
# into it, as ./build install would for the user.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/bin/jdk.sh"
keep=""; [ "${1:-}" = "--keep" ] && keep=1
work=$(mktemp -d "${TMPDIR:-/tmp}/tornado-lora-consumer.XXXXXX")
[ -n "$keep" ] && echo "check-consumer: working in $work" || trap 'rm -rf "$work"' EXIT
fail() { echo "check-consumer: FAILED: $*" >&2; exit 1; }
step() { echo "check-consumer: $*"; }

repo=${MAVEN_REPO:-$(cd "$root" && mvn -q -B -ntp help:evaluate -Dexpression=settings.localRepository -DforceStdout \
  | sed 's/\x1b\[[0-9;]*m//g')}
[ -d "$repo" ] || fail "no local Maven repository at '$repo' (set MAVEN_REPO)"
step "local Maven repository: $repo"

step "1. fresh clone of $(git -C "$root" rev-parse --short HEAD), then the README's install command: ./build install"
git clone -q "$root" "$work/clone"
grep -q '^\./build install' "$work/clone/README.md" || fail "README.md does not give './build install'"
(cd "$work/clone" && ./build install -Dmaven.repo.local="$repo") || fail "./build install"

step "2. a separate project depending only on dev.tornadolora:tornado-lora-core:0.1.0-SNAPSHOT"
app=$work/app
mkdir -p "$app/src/main/java/example"
# The README's Library snippet: the first ```java block after "## Library", as the README shows it.
awk '/^## Library/ {lib=1} lib && /^```java$/ {on=1; next} on && /^```$/ {exit} on {print}' "$work/clone/README.md" \
  > "$app/src/main/java/example/ReadmeExample.java"
[ -s "$app/src/main/java/example/ReadmeExample.java" ] || fail "no \`\`\`java block under '## Library' in README.md"
# docs/library.md's fine-tune from Java: compiled here too (FinetuneExampleTest runs it on a fixture model).
awk '/^## Fine-tuning from Java/ {lib=1} lib && /^```java$/ {on=1; next} on && /^```$/ {exit} on {print}' \
  "$work/clone/docs/library.md" > "$app/src/main/java/example/FinetuneExample.java"
[ -s "$app/src/main/java/example/FinetuneExample.java" ] || fail "no \`\`\`java block under '## Fine-tuning from Java' in docs/library.md"
# The dependency block as the README gives it.
dependency=$(awk '/^## Use it from Maven/ {sec=1} sec && /^```xml$/ {on=1; next} on && /^```$/ {exit} on {print}' \
  "$work/clone/README.md")
echo "$dependency" | grep -q '<artifactId>tornado-lora-core</artifactId>' || fail "no tornado-lora-core <dependency> in README.md"
cat > "$app/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>example</groupId>
  <artifactId>readme-example</artifactId>
  <version>1</version>
  <properties>
    <maven.compiler.release>21</maven.compiler.release>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
  </properties>
  <dependencies>
$dependency
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-compiler-plugin</artifactId>
        <version>3.13.0</version>
      </plugin>
    </plugins>
  </build>
</project>
EOF
mvnc=(mvn -q -B -ntp -Dmaven.repo.local="$repo")
(cd "$app" && "${mvnc[@]}" compile) || fail "the README's snippet does not compile in a project depending on the coordinates"
(cd "$app" && "${mvnc[@]}" dependency:build-classpath -Dmdep.outputFile=cp.txt) || fail "dependency:build-classpath"

step "3. mvn dependency:tree"
tree=$(cd "$app" && mvn -B -ntp -Dmaven.repo.local="$repo" dependency:tree | sed -n 's/^\[INFO\] //p' \
  | sed -n '/^example:readme-example/,/^---/p' | sed '/^---/d')
echo "$tree" | sed 's/^/    /'
if echo "$tree" | grep -Eiq 'picocli|xchart|progressbar|jline'; then
  fail "the library pulls a CLI or chart library: $(echo "$tree" | grep -Ei 'picocli|xchart|progressbar|jline' | tr -s ' ')"
fi
step "4. java -cp (no --add-modules) example.ReadmeExample"
out=$("$JAVA_HOME/bin/java" -cp "$app/target/classes:$(cat "$app/cp.txt")" example.ReadmeExample "$work/adapters" 2>&1) \
  || { echo "$out" >&2; fail "the snippet did not run with plain java -cp (the JVM backend needs its scalar fallback"\
" when jdk.incubator.vector is not readable)"; }
echo "$out" | sed 's/^/    /'
[ -f "$work/adapters/adapter_model.safetensors" ] && [ -f "$work/adapters/adapter_config.json" ] \
  || fail "the snippet did not write adapter_model.safetensors and adapter_config.json"

step "OK: installed from a clone, compiled and ran the README's snippet from a separate project, no CLI libraries"
