package dev.tornadolora.io;

import java.util.List;
import java.util.TreeSet;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * PEFT's {@code target_modules}: which modules of a model carry an adapter, decided on each module's full name
 * ({@code model.layers.0.self_attn.q_proj}, {@code lm_head}) exactly as PEFT 0.21's
 * {@code check_target_module_exists} decides it:
 * <ul>
 *   <li>a list of names: the full name is one of them, or ends with {@code "." + name} (so {@code q_proj},
 *       {@code self_attn.q_proj} and {@code model.layers.0.self_attn.q_proj} all name layer 0's q_proj);</li>
 *   <li>{@code "all-linear"}: every linear layer except the output layer ({@code lm_head});</li>
 *   <li>any other string: a regular expression the full name must match entirely ({@code re.fullmatch}).</li>
 * </ul>
 * Exactly one of {@code names} (sorted) and {@code regex} is non-null, or {@code allLinear} is set.
 */
public record TargetModules(List<String> names, String regex, boolean allLinear) {
    public static final String ALL_LINEAR = "all-linear";

    public TargetModules {
        if (allLinear) {
            names = null;
            regex = null;
        } else if (regex != null) {
            if (names != null) throw new IllegalArgumentException("target_modules: a list or a regex, not both");
            try {
                Pattern.compile(regex);
            } catch (PatternSyntaxException e) {
                throw new IllegalArgumentException("target_modules: " + SafeText.quote(regex)
                        + " is not a regular expression (" + e.getDescription() + ")");
            }
        } else {
            if (names == null) throw new IllegalArgumentException("target_modules: no module names");
            for (String n : names) {
                if (n == null || n.isBlank()) throw new IllegalArgumentException("target_modules: an empty module name");
            }
            names = List.copyOf(new TreeSet<>(names));
        }
    }

    /** A list of module names (suffix match). */
    public static TargetModules of(List<String> names) {
        return new TargetModules(names, null, false);
    }

    /** PEFT's string form: {@code "all-linear"} or a regex. */
    public static TargetModules of(String spec) {
        return ALL_LINEAR.equals(spec) ? new TargetModules(null, null, true) : new TargetModules(null, spec, false);
    }

    /**
     * Whether the module with this full name carries an adapter.
     *
     * @param fullName the module's full name, e.g. {@code model.layers.0.mlp.down_proj}
     * @param outputLayer whether it is the model's output layer ({@code lm_head}), which all-linear leaves out
     */
    public boolean matches(String fullName, boolean outputLayer) {
        if (allLinear) return !outputLayer;
        if (regex != null) return Pattern.compile(regex).matcher(fullName).matches();
        for (String n : names) {
            if (fullName.equals(n) || fullName.endsWith("." + n)) return true;
        }
        return false;
    }

    /** As a user reads it: the sorted names, or the one string. */
    public List<String> asList() {
        return names != null ? names : List.of(allLinear ? ALL_LINEAR : regex);
    }

    @Override
    public String toString() {
        return String.join(",", asList());
    }
}
