package dev.tornadolora.io;

/** A safetensors file that cannot be read as asked: the message names the file's problem. */
public class SafeTensorsException extends IllegalArgumentException {
    /**
     * A problem without an underlying exception.
     *
     * @param message names the file and what is wrong with it
     */
    public SafeTensorsException(String message) {
        super(message);
    }

    /**
     * A problem caused by another exception.
     *
     * @param message names the file and what is wrong with it
     * @param cause   the underlying error, e.g. an I/O exception
     */
    public SafeTensorsException(String message, Throwable cause) {
        super(message, cause);
    }
}
