package io.predcode.cuda;

/** A CUDA driver or cuBLAS call failed; the message names the call and CUDA's error name. */
public class CudaException extends IllegalStateException {
    /** The CUDA or cuBLAS status code. */
    private final int status;

    /** A failed driver or cuBLAS call, with the message naming it and the status it returned. */
    public CudaException(String message, int status) {
        super(message);
        this.status = status;
    }

    /** The CUDA or cuBLAS status code. */
    public int status() { return status; }
}
