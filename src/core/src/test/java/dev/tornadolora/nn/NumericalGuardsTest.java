package dev.tornadolora.nn;

import dev.tornadolora.tensor.NonFiniteException;
import dev.tornadolora.tensor.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** setCheckFinite: the first NaN or infinity in an input, parameter, output or gradient, by tensor and element. */
class NumericalGuardsTest {

    private static LoRALinear layer() {
        LoRALinear l = LoRALinear.builder(8, 6).rank(2).alpha(4).bias(true).seed(1).build().setCheckFinite(true);
        l.load("lora_b.weight", LoRALinearTest.randn(5, 6, 2));
        return l;
    }

    private static String message(Runnable r) {
        return assertThrows(NonFiniteException.class, r::run).getMessage();
    }

    @Test
    void offByDefaultAndNaNsFlowThrough() {
        LoRALinear l = LoRALinear.builder(8, 6).rank(2).seed(1).build();
        assertFalse(l.checksFinite());
        Tensor x = LoRALinearTest.randn(2, 3, 8);
        x.data()[5] = Float.NaN;
        assertTrue(Float.isNaN(l.forward(x).data()[0]));
    }

    @Test
    void aNonFiniteInputIsNamedWithItsIndex() {
        Tensor x = LoRALinearTest.randn(2, 2, 3, 8);
        x.data()[17] = Float.NaN;
        assertEquals("non-finite value NaN in x at index 17 ([0, 2, 1] of shape [2, 3, 8])", message(() -> layer().forward(x)));
    }

    @Test
    void nonFiniteParametersAreNamedBeforeTheOutputTheyPoison() {
        LoRALinear l = layer();
        Tensor b = LoRALinearTest.randn(3, 6, 2);
        b.data()[7] = Float.POSITIVE_INFINITY;
        l.load("lora_b.weight", b);
        assertEquals("non-finite value Infinity in lora_b.weight at index 7 ([3, 1] of shape [6, 2])",
                message(() -> l.forward(LoRALinearTest.randn(2, 1, 8))));
    }

    @Test
    void anOverflowingOutputIsNamed() {
        LoRALinear l = layer();
        Tensor x = LoRALinearTest.randn(2, 2, 8);
        for (int i = 8; i < 16; i++) x.data()[i] = 3e38f;  // finite, but x·Wᵀ overflows on the second token
        String m = message(() -> l.forward(x));
        assertTrue(m.startsWith("non-finite value ") && m.contains(" in y at index "), m);
        int index = Integer.parseInt(m.replaceAll(".* at index (\\d+) .*", "$1"));
        assertTrue(index >= 6, "first bad element is in the second token: " + m);
    }

    @Test
    void gradientsAndDxAreChecked() {
        LoRALinear l = layer();
        l.forward(LoRALinearTest.randn(2, 2, 8));
        Tensor dy = LoRALinearTest.randn(4, 2, 6);
        dy.data()[11] = Float.NEGATIVE_INFINITY;
        assertEquals("non-finite value -Infinity in dy at index 11 ([1, 5] of shape [2, 6])", message(() -> l.backward(dy)));

        Tensor huge = LoRALinearTest.randn(4, 2, 6);
        java.util.Arrays.fill(huge.data(), 3e38f);
        String m = message(() -> l.backward(huge));
        assertTrue(m.matches("non-finite value (NaN|-?Infinity) in (lora_[ab]\\.weight\\.grad|dx) at index \\d+ .*"), m);
    }

    @Test
    void finiteValuesPassAndGiveTheSameResultsAsUnchecked() {
        LoRALinear checked = layer(), plain = layer().setCheckFinite(false);
        Tensor x = LoRALinearTest.randn(2, 4, 8), dy = LoRALinearTest.randn(3, 4, 6);
        assertArrayEquals(plain.forward(x).data(), checked.forward(x).data());
        assertArrayEquals(plain.backward(dy).data(), checked.backward(dy).data());
    }
}
