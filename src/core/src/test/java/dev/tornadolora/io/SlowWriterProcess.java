package dev.tornadolora.io;

import java.io.IOException;
import java.nio.file.Path;

/**
 * The process that {@link AtomicFilesKillTest} kills: writes safetensors files through {@link AtomicFiles} and
 * says on stdout how far it got. {@code slow TARGET VERSION N}: one file, in 64 KiB pieces 20 ms apart, printing
 * "writing" after the first; {@code loop TARGET N}: versions 1, 2, ... as fast as it can, printing "wrote V".
 */
public final class SlowWriterProcess {
    private SlowWriterProcess() {}

    /** The file of one version: {@code n} floats all equal to the version, which the metadata names too. */
    static byte[] version(int v, int n) {
        float[] values = new float[n];
        java.util.Arrays.fill(values, v);
        return new SafeTensorsWriter().metadata("version", Integer.toString(v)).f32("w", new int[] {n}, values).toBytes();
    }

    public static void main(String[] args) throws IOException, InterruptedException {
        Path target = Path.of(args[1]);
        if (args[0].equals("slow")) {
            byte[] bytes = version(Integer.parseInt(args[2]), Integer.parseInt(args[3]));
            AtomicFiles.write(target, out -> {
                for (int at = 0; at < bytes.length; at += 1 << 16) {
                    out.write(bytes, at, Math.min(1 << 16, bytes.length - at));
                    out.flush();
                    if (at == 0) {
                        System.out.println("writing");
                        System.out.flush();
                    }
                    try {
                        Thread.sleep(20);
                    } catch (InterruptedException e) {
                        throw new IOException(e);
                    }
                }
            });
            System.out.println("done");
        } else {
            int n = Integer.parseInt(args[2]);
            for (int v = 1; ; v++) {
                byte[] bytes = version(v, n);
                AtomicFiles.write(target, out -> out.write(bytes));
                System.out.println("wrote " + v);
                System.out.flush();
            }
        }
    }
}
