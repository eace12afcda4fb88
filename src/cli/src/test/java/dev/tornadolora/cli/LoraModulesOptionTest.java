package dev.tornadolora.cli;

import dev.tornadolora.io.TargetModules;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code finetune --lora-modules} as PEFT's target_modules, with torchtune's --lora-mlp/--lora-output shorthands. */
class LoraModulesOptionTest {

    @Test
    void namesAllLinearAndRegex() {
        TargetModules t = FinetuneCommand.targetModules("q_proj, down_proj", false, false);
        assertEquals(List.of("down_proj", "q_proj"), t.names());
        assertTrue(t.matches("model.layers.3.mlp.down_proj", false));
        assertFalse(t.matches("model.layers.3.mlp.up_proj", false));

        assertEquals(List.of("gate_proj", "lm_head", "q_proj", "up_proj", "down_proj").stream().sorted().toList(),
                FinetuneCommand.targetModules("q_proj", true, true).names());

        TargetModules all = FinetuneCommand.targetModules("all-linear", false, false);
        assertTrue(all.allLinear() && all.matches("model.layers.0.self_attn.o_proj", false) && !all.matches("lm_head", true));

        TargetModules rx = FinetuneCommand.targetModules(".*\\.(q|down)_proj", false, false);
        assertEquals(".*\\.(q|down)_proj", rx.regex());
        assertTrue(rx.matches("model.layers.0.self_attn.q_proj", false));
        assertFalse(rx.matches("model.layers.0.self_attn.k_proj", false));
        // PEFT's full match: a regex matching only part of the name does not select the module
        assertFalse(FinetuneCommand.targetModules("q_pro.?", false, false).matches("model.layers.0.self_attn.q_proj", false));

        var e = assertThrows(IllegalArgumentException.class, () -> FinetuneCommand.targetModules("all-linear", true, false));
        assertTrue(e.getMessage().contains("--lora-mlp and --lora-output add to a list"), e.getMessage());
    }
}
