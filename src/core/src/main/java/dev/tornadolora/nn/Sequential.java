package dev.tornadolora.nn;

import dev.tornadolora.tensor.NonFiniteException;
import dev.tornadolora.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Modules applied in order, as {@code torch.nn.Sequential}: forward feeds each child's output to the next,
 * backward runs the children in reverse so gradients flow through the whole chain. Children have names
 * ({@code "0"}, {@code "1"}, ... by default, or given, as with an {@code OrderedDict}) and their parameters
 * are listed as {@code child.param}, e.g. {@code fc1.lora_a.weight}: the keys of torchtune's state dicts.
 */
public final class Sequential implements Module, AutoCloseable {
    private final Map<String, Module> children;

    /** Children named by position: {@code "0"}, {@code "1"}, ... */
    public Sequential(Module... modules) {
        this(indexed(Arrays.asList(modules)));
    }

    /** Children with the given names, in the map's order. */
    public Sequential(Map<String, ? extends Module> named) {
        if (named.isEmpty()) {
            throw new IllegalArgumentException("Sequential needs at least one module");
        }
        Map<String, Module> c = new LinkedHashMap<>();
        named.forEach((name, m) -> {
            if (name == null || name.isEmpty() || name.contains(".")) {
                throw new IllegalArgumentException("module name '" + name + "' must be non-empty and contain no '.'");
            }
            if (m == null) {
                throw new IllegalArgumentException("module '" + name + "' is null");
            }
            c.put(name, m);
        });
        this.children = Collections.unmodifiableMap(c);
    }

    private static Map<String, Module> indexed(List<Module> modules) {
        Map<String, Module> m = new LinkedHashMap<>();
        for (int i = 0; i < modules.size(); i++) m.put(String.valueOf(i), modules.get(i));
        return m;
    }

    @Override
    public Tensor forward(Tensor x) {
        for (Map.Entry<String, Module> m : children.entrySet()) {
            try {
                x = m.getValue().forward(x);
            } catch (NonFiniteException e) {
                throw e.in(m.getKey());
            }
        }
        return x;
    }

    @Override
    public Tensor backward(Tensor dy) {
        List<Map.Entry<String, Module>> reversed = new ArrayList<>(children.entrySet());
        Collections.reverse(reversed);
        for (Map.Entry<String, Module> m : reversed) {
            try {
                dy = m.getValue().backward(dy);
            } catch (NonFiniteException e) {
                throw e.in(m.getKey());
            }
        }
        return dy;
    }

    @Override
    public List<Parameter> parameters() {
        List<Parameter> all = new ArrayList<>();
        children.forEach((name, m) -> m.parameters().forEach(p -> all.add(p.withPrefix(name))));
        return all;
    }

    @Override
    public Sequential train(boolean mode) {
        children.values().forEach(m -> m.train(mode));
        return this;
    }

    public Sequential eval() {
        return train(false);
    }

    /** Zeroes every parameter's gradient. */
    public void zeroGrad() {
        for (Parameter p : parameters()) Arrays.fill(p.grad(), 0f);
    }

    public Map<String, Module> children() {
        return children;
    }

    /** The LoRA layers by child name, in order: what adapter checkpoints save and load. */
    public Map<String, LoRALinear> loraModules() {
        Map<String, LoRALinear> m = new LinkedHashMap<>();
        children.forEach((name, c) -> {
            if (c instanceof LoRALinear l) m.put(name, l);
        });
        return m;
    }

    /** Closes every child that holds backend resources (LoRA and frozen linear layers). */
    @Override
    public void close() {
        for (Module c : children.values()) {
            if (c instanceof AutoCloseable closeable) {
                try {
                    closeable.close();
                } catch (Exception e) {
                    throw new IllegalStateException("closing " + c + ": " + e.getMessage(), e);
                }
            }
        }
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("Sequential(");
        children.forEach((n, m) -> sb.append("\n  (").append(n).append("): ").append(m));
        return sb.append("\n)").toString();
    }
}
