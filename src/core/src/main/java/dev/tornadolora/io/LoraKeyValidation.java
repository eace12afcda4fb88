package dev.tornadolora.io;

import java.util.Collection;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * Checks the keys left over after loading base weights and adapter weights into a model, with the semantics of
 * torchtune's {@code validate_missing_and_unexpected_for_lora(state_dict_keys=..., base_missing, base_unexpected,
 * lora_missing, lora_unexpected)}: a key is an adapter key when it contains {@code lora} or {@code magnitude};
 * a base key may be missing from the adapter file and an adapter key from the base file, but
 * <ul>
 *   <li>a base key missing from the base file, or any key missing from both, is an error
 *       ("Missing non-LoRA key K from base model dict"),</li>
 *   <li>an adapter key missing from the adapter file is an error ("Missing LoRA key K from adapter state dict"),</li>
 *   <li>any unexpected key on either side is an error.</li>
 * </ul>
 * Unlike torchtune, which names no key for unexpected ones, every message lists the offending keys (sorted).
 */
public final class LoraKeyValidation {
    private LoraKeyValidation() {}

    public static boolean isLoraKey(String key) {
        return key.contains("lora") || key.contains("magnitude");
    }

    /**
     * @param stateDictKeys the model's own keys (ground truth)
     * @param baseMissing   model keys absent from the base file (null when no base file was loaded)
     * @param baseUnexpected keys of the base file the model does not have (null: none)
     * @param loraMissing   model keys absent from the adapter file (null when no adapter file was loaded)
     * @param loraUnexpected keys of the adapter file the model does not have (null: none)
     * @throws IllegalArgumentException naming every offending key and its side
     */
    public static void validate(Collection<String> stateDictKeys, Collection<String> baseMissing,
                                Collection<String> baseUnexpected, Collection<String> loraMissing,
                                Collection<String> loraUnexpected) {
        Set<String> base = new TreeSet<>(), lora = new TreeSet<>();
        for (String k : stateDictKeys) (isLoraKey(k) ? lora : base).add(k);
        Set<String> baseMissingSet = new TreeSet<>(orEmpty(baseMissing));
        Set<String> loraMissingSet = new TreeSet<>(orEmpty(loraMissing));

        Set<String> missing = new TreeSet<>();
        for (String k : baseMissingSet) {
            if (loraMissingSet.contains(k) || base.contains(k)) missing.add(k);
        }
        for (String k : loraMissingSet) {
            if (lora.contains(k)) missing.add(k);
        }
        StringBuilder errors = new StringBuilder();
        for (String k : missing) {
            if (base.contains(k)) {
                errors.append("\n- Missing non-LoRA key ").append(k).append(" from base model dict");
            } else if (lora.contains(k)) {
                errors.append("\n- Missing LoRA key ").append(k).append(" from adapter state dict");
            } else {
                errors.append("\n- Key ").append(k).append(" reported missing but the model has no such key");
            }
        }
        if (!orEmpty(baseUnexpected).isEmpty()) {
            errors.append("\n- Unexpected key(s) loading base model: ").append(String.join(", ", new TreeSet<>(baseUnexpected)));
        }
        if (!orEmpty(loraUnexpected).isEmpty()) {
            errors.append("\n- Unexpected key(s) loading adapter: ").append(String.join(", ", new TreeSet<>(loraUnexpected)));
        }
        if (!errors.isEmpty()) {
            throw new IllegalArgumentException("Missing or unexpected keys when validating state dict:" + errors);
        }
    }

    private static Collection<String> orEmpty(Collection<String> c) {
        return c == null ? List.of() : c;
    }
}
