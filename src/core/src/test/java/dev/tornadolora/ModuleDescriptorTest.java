package dev.tornadolora;

import org.junit.jupiter.api.Test;

import java.lang.module.ModuleDescriptor;
import java.lang.module.ModuleFinder;
import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The core's module descriptor (module-info.java) exports the packages meant for users and nothing else, and reads
 * only the JDK and Jackson. A new package fails here until module-info.java says which it is.
 */
class ModuleDescriptorTest {
    static final Set<String> EXPORTED = Set.of("dev.tornadolora.tensor", "dev.tornadolora.nn", "dev.tornadolora.llama",
            "dev.tornadolora.io", "dev.tornadolora.train", "dev.tornadolora.kernels", "dev.tornadolora.finetune",
            "dev.tornadolora.device", "dev.tornadolora.math");
    static final Set<String> INTERNAL = Set.of("dev.tornadolora.kernels.jvm", "dev.tornadolora.llama.ops", "dev.tornadolora.bench");

    private static ModuleDescriptor descriptor() {
        return ModuleFinder.of(Path.of("target/classes")).find("dev.tornadolora.core")
                .orElseThrow(() -> new AssertionError("no module dev.tornadolora.core in target/classes"))
                .descriptor();
    }

    @Test
    void exportsTheUserPackagesOnly() {
        ModuleDescriptor d = descriptor();
        Set<String> exported = d.exports().stream().filter(e -> !e.isQualified()).map(ModuleDescriptor.Exports::source)
                .collect(Collectors.toCollection(TreeSet::new));
        assertEquals(new TreeSet<>(EXPORTED), exported);
        Set<String> undecided = new TreeSet<>(d.packages());
        undecided.removeAll(EXPORTED);
        undecided.removeAll(INTERNAL);
        assertTrue(undecided.isEmpty(), "packages neither exported nor internal: " + undecided
                + "; export them in src/core/src/main/java/module-info.java (and list them here) if they are for users");
    }

    @Test
    void readsOnlyTheJdkAndJackson() {
        Set<String> required = descriptor().requires().stream().map(ModuleDescriptor.Requires::name)
                .filter(n -> !n.startsWith("java.") && !n.startsWith("jdk."))
                .collect(Collectors.toCollection(TreeSet::new));
        assertEquals(Set.of("com.fasterxml.jackson.databind"), required);
        assertTrue(descriptor().requires().stream().anyMatch(r -> r.name().equals("jdk.incubator.vector")
                && r.modifiers().contains(ModuleDescriptor.Requires.Modifier.STATIC)), "the Vector API is optional");
    }
}
