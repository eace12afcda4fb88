package dev.tornadolora.nn;

import dev.tornadolora.kernels.LayerKernels;
import dev.tornadolora.kernels.LoraBackend;
import dev.tornadolora.kernels.ScalarLoraKernels;

import java.util.function.Function;

/**
 * A layer's backend and its binding there: the binding is made on the first call and closed when the layer's
 * frozen parts or its backend change ({@link #unbind}). A new layer is on the scalar reference backend (the
 * caller's thread, no state), as a new torch module is on the CPU, until {@code to(device)} moves it.
 */
final class Binding {
    private final Object lock = new Object();
    private LoraBackend backend = ScalarLoraKernels.INSTANCE;
    private volatile LayerKernels bound;

    /** The backend: the reference until one is set. */
    LoraBackend backend() {
        synchronized (lock) {
            return backend;
        }
    }

    /** Uses {@code b} from the next call on; the old binding is closed. */
    void setBackend(LoraBackend b) {
        if (b == null) {
            throw new IllegalArgumentException("backend must not be null");
        }
        synchronized (lock) {
            backend = b;
        }
        unbind();
    }

    /** The current binding, made by {@code bind} when there is none. */
    LayerKernels bound(Function<LoraBackend, LayerKernels> bind) {
        LayerKernels k = bound;
        if (k == null) {
            LoraBackend b = backend();
            synchronized (lock) {
                k = bound;
                if (k == null) {
                    bound = k = bind.apply(b);
                }
            }
        }
        return k;
    }

    /** Whether {@code k} is still the current binding (a backward must use its forward's). */
    boolean isCurrent(LayerKernels k) {
        return k == bound;
    }

    /** Closes the binding; the next call binds again. */
    void unbind() {
        LayerKernels old;
        synchronized (lock) {
            old = bound;
            bound = null;
        }
        if (old != null) {
            old.close();
        }
    }
}
