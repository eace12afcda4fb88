package dev.tornadolora.tornado;

import dev.tornadolora.tornado.plan.Nf4Variant;
import dev.tornadolora.tornado.plan.Schedule;

import java.util.Map;

/**
 * Options of the TornadoVM backend, given to its constructor (the CLI maps {@code -Dtornadolora.schedule},
 * {@code -Dtornadolora.nf4.variant} and {@code -Dtornadolora.panelLocal} onto them).
 *
 * @param schedule   the matmul schedule, or null: by device type ({@link Schedule#forDevice})
 * @param nf4Variant how an NF4 base reaches the matmul, or null: by the plan's token capacity
 *                   ({@link Nf4Variant#choose})
 * @param panelLocalX work-group of the CPU panel matmul, dimension 0 (default 16)
 * @param panelLocalY and dimension 1 (default 16)
 */
public record TornadoOptions(Schedule schedule, Nf4Variant nf4Variant, int panelLocalX, int panelLocalY) {
    public TornadoOptions {
        if (panelLocalX < 1 || panelLocalY < 1) {
            throw new IllegalArgumentException("panelLocal must be positive, got " + panelLocalX + "x" + panelLocalY);
        }
    }

    public static TornadoOptions defaults() {
        return new TornadoOptions(null, null, 16, 16);
    }

    /** From a {@code DeviceOptions}' accelerator settings: {@code schedule}, {@code nf4.variant}, {@code panelLocal}. */
    public static TornadoOptions parse(Map<String, String> settings) {
        TornadoOptions o = defaults();
        Schedule schedule = o.schedule;
        Nf4Variant variant = o.nf4Variant;
        int lx = o.panelLocalX, ly = o.panelLocalY;
        for (Map.Entry<String, String> e : settings.entrySet()) {
            String v = e.getValue().trim();
            try {
                switch (e.getKey()) {
                    case "schedule" -> schedule = v.equalsIgnoreCase("auto") ? null : Schedule.valueOf(v);
                    case "nf4.variant" -> variant = v.equalsIgnoreCase("auto") ? null : Nf4Variant.valueOf(v);
                    case "panelLocal" -> {
                        String[] p = v.split("x");
                        if (p.length != 2) {
                            throw new IllegalArgumentException("expected XxY");
                        }
                        lx = Integer.parseInt(p[0].trim());
                        ly = Integer.parseInt(p[1].trim());
                    }
                    default -> throw new IllegalArgumentException("unknown TornadoVM option '" + e.getKey()
                            + "'; expected schedule, nf4.variant or panelLocal");
                }
            } catch (IllegalArgumentException ex) {
                if (ex.getMessage() != null && ex.getMessage().startsWith("unknown TornadoVM option")) {
                    throw ex;
                }
                throw new IllegalArgumentException("TornadoVM option " + e.getKey() + "='" + v + "': " + ex.getMessage());
            }
        }
        return new TornadoOptions(schedule, variant, lx, ly);
    }
}
