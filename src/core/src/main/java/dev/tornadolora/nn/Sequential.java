package dev.tornadolora.nn;

import dev.tornadolora.device.Device;
import dev.tornadolora.tensor.NonFiniteException;
import dev.tornadolora.tensor.Tensor;

import java.util.AbstractMap;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;

/**
 * Modules applied in order, as {@code torch.nn.Sequential}: forward feeds each child's output to the next,
 * backward runs the children in reverse so gradients flow through the whole chain. Children have names
 * ({@code "0"}, {@code "1"}, ... by default, or given, as with an {@code OrderedDict}) and their parameters
 * are listed as {@code child.param}, e.g. {@code fc1.lora_a.weight}: the keys of torchtune's state dicts.
 */
public final class Sequential implements Module, AutoCloseable {
    private final Map<String, Module> children;

    /**
     * Children named by position: {@code "0"}, {@code "1"}, ...
     *
     * @param modules the children in the order they run
     */
    public Sequential(Module... modules) {
        List<Map.Entry<String, Module>> named = new ArrayList<>();
        for (int i = 0; i < modules.length; i++) named.add(new AbstractMap.SimpleImmutableEntry<>(String.valueOf(i), modules[i]));
        this.children = children(named);
    }

    /**
     * Children with the given names, in the map's order, as {@code nn.Sequential(OrderedDict(...))}.
     *
     * @param named the children in the order they run: a {@link SequencedMap} such as {@link LinkedHashMap}
     * @throws IllegalArgumentException when the map is empty, has no defined order ({@link java.util.HashMap},
     *         {@link Map#of}: the layers would run in an arbitrary order), or a name is empty or contains '.'
     */
    public Sequential(Map<String, ? extends Module> named) {
        this.children = children(requireOrdered(named).entrySet());
    }

    /**
     * Children with the given names, in the list's order, e.g.
     * {@code new Sequential(List.of(Map.entry("fc1", fc1), Map.entry("act", Activation.silu())))}.
     *
     * @param named (name, module) pairs in the order they run
     * @throws IllegalArgumentException when the list is empty, or a name repeats, is empty or contains '.'
     */
    public Sequential(List<? extends Map.Entry<String, ? extends Module>> named) {
        this.children = children(named);
    }

    private static <M extends Map<String, ? extends Module>> M requireOrdered(M named) {
        if (!named.isEmpty() && !(named instanceof SequencedMap)) {
            throw new IllegalArgumentException("Sequential needs its modules in order, but a "
                    + named.getClass().getName() + " has no defined order (the layers would run in an arbitrary"
                    + " order): pass a LinkedHashMap (or another SequencedMap), or a List of Map.entry(name, module)");
        }
        return named;
    }

    private static Map<String, Module> children(Collection<? extends Map.Entry<String, ? extends Module>> named) {
        if (named.isEmpty()) {
            throw new IllegalArgumentException("Sequential needs at least one module");
        }
        Map<String, Module> c = new LinkedHashMap<>();
        for (Map.Entry<String, ? extends Module> e : named) {
            String name = e.getKey();
            if (name == null || name.isEmpty() || name.contains(".")) {
                throw new IllegalArgumentException("module name '" + name + "' must be non-empty and contain no '.'");
            }
            if (e.getValue() == null) {
                throw new IllegalArgumentException("module '" + name + "' is null");
            }
            if (c.put(name, e.getValue()) != null) {
                throw new IllegalArgumentException("module name '" + name + "' is given twice");
            }
        }
        return Collections.unmodifiableMap(c);
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

    /** Moves every linear child (LoRA and frozen) to {@code device}; the next forward binds them there. */
    public Sequential to(Device device) {
        for (Module c : children.values()) {
            if (c instanceof LoRALinear l) l.to(device);
            else if (c instanceof FrozenLinear f) f.to(device);
        }
        return this;
    }

    /** {@return this model, in evaluation mode (dropout off)} */
    public Sequential eval() {
        return train(false);
    }

    /** Zeroes every parameter's gradient. */
    public void zeroGrad() {
        for (Parameter p : parameters()) Arrays.fill(p.grad(), 0f);
    }

    /** {@return the children by name, in order (unmodifiable)} */
    public Map<String, Module> children() {
        return children;
    }

    /** {@return the LoRA layers by child name, in order: what adapter checkpoints save and load} */
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
