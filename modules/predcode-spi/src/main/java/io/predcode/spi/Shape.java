package io.predcode.spi;

import java.util.Arrays;

/** Dimensions of a row-major (C order) float32 tensor, as PyTorch lays out a contiguous tensor. */
public record Shape(int... dims) {
    /** Copies the dimensions and checks that each is >= 1. */
    public Shape {
        dims = dims.clone();
        for (int d : dims) if (d < 1) throw new IllegalArgumentException("shape " + Arrays.toString(dims) + ": every dimension must be >= 1");
    }

    /** A shape of these dimensions. */
    public static Shape of(int... dims) { return new Shape(dims); }

    /** The number of dimensions. */
    public int rank() { return dims.length; }

    /** Dimension i; a negative i counts from the end. */
    public int dim(int i) { return dims[i < 0 ? dims.length + i : i]; }

    /** The number of elements. */
    public long size() {
        long n = 1;
        for (int d : dims) n *= d;
        return n;
    }

    /** Product of all dimensions after the first: the row length when dim 0 is the batch. */
    public long rowSize() { return size() / dims[0]; }

    /** A copy of the dimensions. */
    @Override public int[] dims() { return dims.clone(); }

    @Override public boolean equals(Object o) { return o instanceof Shape s && Arrays.equals(dims, s.dims); }

    @Override public int hashCode() { return Arrays.hashCode(dims); }

    @Override public String toString() { return Arrays.toString(dims); }
}
