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
    void activationBackwardBeforeForwardIsAnError() {
        var e = assertThrows(IllegalStateException.class, () -> Activation.silu().backward(Tensor.zeros(1)));
        assertEquals("backward called before forward", e.getMessage());
    }
}
