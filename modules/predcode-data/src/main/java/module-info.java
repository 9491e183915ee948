/** Data sets for predcode: IDX (MNIST, Fashion-MNIST), CIFAR-10 binary, the bundled 8x8 digits; batching and prefetch. */
module io.predcode.data {
    exports io.predcode.data;
}
