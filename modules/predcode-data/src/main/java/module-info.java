/** Data sets for predcode: IDX (MNIST, Fashion-MNIST), CIFAR-10 binary, NumPy .npy folders and .npz archives, CSV tables, the bundled 8x8 digits; batching and prefetch. */
module io.predcode.data {
    exports io.predcode.data;
}
