package io.predcode.cuda;

/** A CUDA driver or cuBLAS call failed; the message names the call and CUDA's error name. */
public class CudaException extends IllegalStateException {
    private final int status;

    public CudaException(String message, int status) {
        super(message);
        this.status = status;
    }

    public int status() { return status; }
}
