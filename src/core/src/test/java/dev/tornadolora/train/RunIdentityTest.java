package dev.tornadolora.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The resume check across versions: options a later version added to the identity count, where a resume point
 * does not record them, as the values that do what the earlier version did (FinetuneCommandTest resumes such a
 * run end to end).
 */
class RunIdentityTest {
    static final JsonNodeFactory F = JsonNodeFactory.instance;
    static final Map<String, JsonNode> EARLIER = Map.of("packing", F.nullNode(), "assistant_only_loss", F.booleanNode(false));

    static ObjectNode earlier() {
        return F.objectNode().put("lr", 0.01).put("steps", 6);
    }

    static RunIdentity now(String packing, boolean assistantOnly, double lr) {
        return RunIdentity.of(earlier().put("lr", lr).put("packing", packing).put("assistant_only_loss", assistantOnly));
    }

    static String refusal(RunIdentity now, RunIdentity saved, Map<String, JsonNode> earlierDefaults) {
        return assertThrows(IllegalArgumentException.class, () -> now.requireSameOptions(saved, earlierDefaults, "out"))
                .getMessage();
    }

    @Test
    void anAddedOptionAtTheEarlierValueResumesAndOneSetOtherwiseIsNamed() {
        RunIdentity saved = RunIdentity.of(earlier());
        assertDoesNotThrow(() -> now(null, false, 0.01).requireSameOptions(saved, EARLIER, "out"));
        assertEquals("out was trained with other options: packing (not recorded: null then) -> \"bfd\" (give the"
                + " options of the run being resumed, or start a new run in another folder)",
                refusal(now("bfd", false, 0.01), saved, EARLIER));
        assertEquals("out was trained with other options: lr 0.01 -> 0.02, assistant_only_loss (not recorded: false"
                + " then) -> true (give the options of the run being resumed, or start a new run in another folder)",
                refusal(now(null, true, 0.02), saved, EARLIER));
    }

    @Test
    void withoutTheEarlierValuesAnUnrecordedOptionDiffers() {
        RunIdentity saved = RunIdentity.of(earlier());
        String m = refusal(now(null, false, 0.01), saved, Map.of());
        assertEquals("out was trained with other options: packing (not recorded) -> null, assistant_only_loss (not"
                + " recorded) -> false (give the options of the run being resumed, or start a new run in another"
                + " folder)", m);
        assertEquals(m, refusal(now(null, false, 0.01), saved, Map.of("chat_template", F.nullNode())),
                "only the options named count");
        // an option the resume point records but this run does not is not an added one
        String dropped = refusal(RunIdentity.of(F.objectNode().put("lr", 0.01)), saved, EARLIER);
        assertEquals("out was trained with other options: steps 6 -> (none) (give the options of the run being"
                + " resumed, or start a new run in another folder)", dropped);
    }
}
