package dev.tornadolora.io;

/** A safetensors file that cannot be read as asked: the message names the file's problem. */
public class SafeTensorsException extends IllegalArgumentException {
    public SafeTensorsException(String message) {
        super(message);
    }

    public SafeTensorsException(String message, Throwable cause) {
        super(message, cause);
    }
}
