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

    /**
     * {@return whether it names an adapter tensor (as torchtune's {@code validate_missing_and_unexpected_for_lora})}
     *
     * @param key a state-dict key
     */
    public static boolean isLoraKey(String key) {
        return key.contains("lora") || key.contains("magnitude");
    }

    /**
     * Checks the keys of a base and an adapter file against the model's, as torchtune's
     * {@code validate_missing_and_unexpected_for_lora}.
     *
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
        int listed = 0;
        for (String k : missing) {
            if (++listed > MAX_LISTED) {
                errors.append("\n- ... and ").append(missing.size() - MAX_LISTED).append(" more missing key(s)");
                break;
            }
            k = SafeText.of(k);
            if (base.contains(k)) {
                errors.append("\n- Missing non-LoRA key ").append(k).append(" from base model dict");
            } else if (lora.contains(k)) {
                errors.append("\n- Missing LoRA key ").append(k).append(" from adapter state dict");
            } else {
                errors.append("\n- Key ").append(k).append(" reported missing but the model has no such key");
            }
        }
        if (!orEmpty(baseUnexpected).isEmpty()) {
            errors.append("\n- Unexpected key(s) loading base model: ").append(list(baseUnexpected));
        }
        if (!orEmpty(loraUnexpected).isEmpty()) {
            errors.append("\n- Unexpected key(s) loading adapter: ").append(list(loraUnexpected));
        }
        if (!errors.isEmpty()) {
            throw new IllegalArgumentException("Missing or unexpected keys when validating state dict:" + errors);
        }
    }

    /** Keys listed in a message at most: a hostile file can have a million. */
    static final int MAX_LISTED = 20;

    /** Sorted, escaped (a key is the file's text) and cut after {@link #MAX_LISTED}. */
    private static String list(Collection<String> keys) {
        java.util.List<String> sorted = new java.util.ArrayList<>(new TreeSet<>(keys));
        String shown = String.join(", ", sorted.subList(0, Math.min(MAX_LISTED, sorted.size())).stream()
                .map(SafeText::of).toList());
        return sorted.size() <= MAX_LISTED ? shown : shown + " ... and " + (sorted.size() - MAX_LISTED) + " more";
    }

    private static Collection<String> orEmpty(Collection<String> c) {
        return c == null ? List.of() : c;
    }
}
