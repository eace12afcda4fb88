package dev.tornadolora.io;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** torchtune's validate_missing_and_unexpected_for_lora semantics, with every offending key named. */
class LoraKeyValidationTest {
    static final List<String> MODEL = List.of("fc1.weight", "fc1.lora_a.weight", "fc1.lora_b.weight",
            "fc2.weight", "fc2.bias", "fc2.lora_a.weight", "fc2.lora_b.weight", "norm.magnitude");

    private static String fail(List<String> baseMissing, List<String> baseUnexpected, List<String> loraMissing,
                               List<String> loraUnexpected) {
        return assertThrows(IllegalArgumentException.class, () -> LoraKeyValidation.validate(MODEL, baseMissing,
                baseUnexpected, loraMissing, loraUnexpected)).getMessage();
    }

    @Test
    void adapterKeysMayBeMissingFromTheBaseAndBaseKeysFromTheAdapter() {
        assertDoesNotThrow(() -> LoraKeyValidation.validate(MODEL,
                List.of("fc1.lora_a.weight", "fc1.lora_b.weight", "fc2.lora_a.weight", "fc2.lora_b.weight", "norm.magnitude"),
                List.of(), List.of("fc1.weight", "fc2.weight", "fc2.bias"), List.of()));
        assertDoesNotThrow(() -> LoraKeyValidation.validate(MODEL, null, null, null, null));
    }

    @Test
    void missingAdapterKeyIsNamedOnTheAdapterSide() {
        assertEquals("Missing or unexpected keys when validating state dict:\n"
                + "- Missing LoRA key fc2.lora_b.weight from adapter state dict",
                fail(null, null, List.of("fc1.weight", "fc2.lora_b.weight"), null));
    }

    @Test
    void missingBaseKeyIsNamedOnTheBaseSide() {
        assertEquals("Missing or unexpected keys when validating state dict:\n"
                + "- Missing non-LoRA key fc2.bias from base model dict",
                fail(List.of("fc2.bias", "fc1.lora_a.weight"), null, null, null));
    }

    @Test
    void keyMissingFromBothFilesIsAnError() {
        // A magnitude key counts as an adapter key, as in torchtune.
        assertEquals("Missing or unexpected keys when validating state dict:\n"
                + "- Missing LoRA key norm.magnitude from adapter state dict",
                fail(List.of("norm.magnitude"), null, List.of("norm.magnitude"), null));
    }

    @Test
    void unexpectedKeysAreListedPerSide() {
        assertEquals("Missing or unexpected keys when validating state dict:\n"
                + "- Unexpected key(s) loading base model: extra.weight\n"
                + "- Unexpected key(s) loading adapter: fc3.lora_a.weight, fc3.lora_b.weight",
                fail(null, List.of("extra.weight"), null, List.of("fc3.lora_b.weight", "fc3.lora_a.weight")));
    }

    @Test
    void allProblemsAreReportedTogether() {
        assertEquals("Missing or unexpected keys when validating state dict:\n"
                + "- Missing LoRA key fc1.lora_a.weight from adapter state dict\n"
                + "- Missing non-LoRA key fc1.weight from base model dict\n"
                + "- Unexpected key(s) loading adapter: fc9.lora_a.weight",
                fail(List.of("fc1.weight"), null, List.of("fc1.lora_a.weight"), List.of("fc9.lora_a.weight")));
    }
}
