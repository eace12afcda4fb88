package dev.tornadolora.nn;

import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.testing.Golden;
import dev.tornadolora.testing.SeqFixture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** LoRA → activation → LoRA: forward, and backward through the chain, against PyTorch autograd. */
class SequentialTest {

    @ParameterizedTest
    @ValueSource(strings = {"silu", "relu"})
    void forwardAndBackwardMatchAutograd(String act) {
        SafeTensors f = Golden.open("train/seq_" + act + ".safetensors");
        Sequential model = SeqFixture.build(f, act, true);
        Tensor y = model.forward(f.f32("x"));
        Golden.assertClose(f.f32("y").data(), y.data(), 1e-5, act + " y");
        Tensor dx = model.backward(f.f32("dy"));
        Golden.assertClose(f.f32("dx").data(), dx.data(), 1e-5, act + " dx");
        for (Parameter p : model.parameters()) {
            Golden.assertClose(f.f32(p.name() + ".grad").data(), p.grad(), 1e-5, act + " " + p.name() + ".grad");
        }
    }

    @Test
    void parametersAreNamedByChildAsTorchtuneKeys() {
        SafeTensors f = Golden.open("train/seq_silu.safetensors");
        Sequential model = SeqFixture.build(f, "silu", true);
        assertEquals(List.of("fc1.lora_a.weight", "fc1.lora_b.weight", "fc2.lora_a.weight", "fc2.lora_b.weight"),
                model.parameters().stream().map(Parameter::name).toList());
        assertEquals(List.of("fc1", "fc2"), List.copyOf(model.loraModules().keySet()));
        Sequential indexed = new Sequential(Activation.relu(), Activation.silu());
        assertEquals(List.of("0", "1"), List.copyOf(indexed.children().keySet()));
    }

    @Test
    void zeroGradAndTrainModeReachEveryLayer() {
        SafeTensors f = Golden.open("train/seq_silu.safetensors");
        Sequential model = SeqFixture.build(f, "silu", true);
        model.forward(f.f32("x"));
        model.backward(f.f32("dy"));
        model.zeroGrad();
        for (Parameter p : model.parameters()) {
            for (float g : p.grad()) assertEquals(0f, g, p.name());
        }
        model.eval();
        model.loraModules().values().forEach(l -> assertEquals(false, l.isTraining()));
    }

    @Test
    void badNamesAndUnknownActivationsAreRejected() {
        Map<String, Module> m = new LinkedHashMap<>();
        m.put("layers.0", Activation.relu());
        var e = assertThrows(IllegalArgumentException.class, () -> new Sequential(m));
        assertEquals("module name 'layers.0' must be non-empty and contain no '.'", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Activation.named("gelu"));
        assertEquals("unknown activation 'gelu'; expected relu or silu", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Sequential(Map.of()));
        assertEquals("Sequential needs at least one module", e.getMessage());
    }

    @Test
    void unorderedMapsAreRefusedAndListsOfEntriesKeepTheirOrder() {
        LoRALinear fc1 = LoRALinear.builder(4, 3).rank(2).alpha(4).seed(1).build();
        LoRALinear fc2 = LoRALinear.builder(3, 2).rank(2).alpha(4).seed(2).build();
        var e = assertThrows(IllegalArgumentException.class,
                () -> new Sequential(Map.of("fc1", fc1, "act", Activation.silu(), "fc2", fc2)));
        assertTrue(e.getMessage().startsWith("Sequential needs its modules in order, but a java.util.ImmutableCollections$MapN"
                + " has no defined order"), e.getMessage());
        java.util.HashMap<String, Module> hash = new java.util.HashMap<>(Map.of("fc1", fc1));
        e = assertThrows(IllegalArgumentException.class, () -> new Sequential(hash));
        assertTrue(e.getMessage().contains("pass a LinkedHashMap (or another SequencedMap), or a List of Map.entry(name,"
                + " module)"), e.getMessage());

        Sequential listed = new Sequential(List.of(Map.entry("fc1", fc1), Map.entry("act", Activation.silu()),
                Map.entry("fc2", fc2)));
        assertEquals(List.of("fc1", "act", "fc2"), List.copyOf(listed.children().keySet()));
        Map<String, Module> linked = new java.util.TreeMap<>(Map.of("b", fc2, "a", fc1));
        assertEquals(List.of("a", "b"), List.copyOf(new Sequential(linked).children().keySet()), "a SortedMap's order");
        e = assertThrows(IllegalArgumentException.class,
                () -> new Sequential(List.of(Map.entry("fc1", fc1), Map.entry("fc1", fc2))));
        assertEquals("module name 'fc1' is given twice", e.getMessage());
    }

    @Test
    void activationBackwardBeforeForwardIsAnError() {
        var e = assertThrows(IllegalStateException.class, () -> Activation.silu().backward(Tensor.zeros(1)));
        assertEquals("backward called before forward", e.getMessage());
    }
}
