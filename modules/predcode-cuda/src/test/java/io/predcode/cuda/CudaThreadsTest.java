package io.predcode.cuda;

import io.predcode.spi.Availability;
import io.predcode.spi.Backend;
import io.predcode.spi.Backends;
import io.predcode.spi.Tensor;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.*;

/** The CUDA backend from two threads in turn: a service calls from whichever worker thread it has. */
class CudaThreadsTest {
    @Test void aSecondThreadUsesTheBackendOpenedOnTheFirst() throws Exception {
        Availability a = Backends.provider("cuda").availability();
        if (!a.available()) System.out.println("SKIPPED CUDA from two threads: " + a.reason());
        Assumptions.assumeTrue(a.available(), a.reason());
        try (Backend be = Backends.open("cuda"); Tensor x = be.allocate(1000); Tensor y = be.allocate(1000)) {
            float[] data = new float[1000];
            for (int i = 0; i < data.length; i++) data[i] = i;
            be.upload(data, x);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            float[][] got = new float[1][];
            Thread other = Thread.ofPlatform().start(() -> {
                try {
                    be.add(2f, x, 1f, x, y); // kernel arguments, the stream, a download and a synchronize, all from this thread
                    be.synchronize();
                    got[0] = be.download(y);
                } catch (Throwable t) {
                    failure.set(t);
                }
            });
            other.join();
            if (failure.get() != null) throw new AssertionError("the second thread failed", failure.get());
            for (int i = 0; i < data.length; i += 37) assertEquals(3f * i, got[0][i], "y[" + i + "]");
            be.matmul(false, false, 1f, be.view(x, 0, io.predcode.spi.Shape.of(10, 100)), be.view(x, 0, io.predcode.spi.Shape.of(100, 10)), 0f,
                    be.view(y, 0, io.predcode.spi.Shape.of(10, 10))); // and back on the first thread, cuBLAS included
            be.synchronize();
        }
    }
}
