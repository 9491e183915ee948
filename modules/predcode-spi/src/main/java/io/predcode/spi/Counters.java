package io.predcode.spi;

import java.util.concurrent.atomic.AtomicLong;

/**
 * What a backend counts, so tests can assert that a training step allocates nothing and moves
 * only the batch in and the loss out.
 */
public final class Counters {
    private final AtomicLong allocations = new AtomicLong();
    private final AtomicLong bytesAllocated = new AtomicLong();
    private final AtomicLong hostToDeviceBytes = new AtomicLong();
    private final AtomicLong deviceToHostBytes = new AtomicLong();
    private final AtomicLong hostToDeviceCopies = new AtomicLong();
    private final AtomicLong deviceToHostCopies = new AtomicLong();

    /** All counts at zero; each backend keeps one ({@link Backend#counters}). */
    public Counters() {}

    /** Counts one allocation of {@code bytes}. */
    public void allocated(long bytes) { allocations.incrementAndGet(); bytesAllocated.addAndGet(bytes); }

    /** Counts one copy of {@code bytes} from the host. */
    public void hostToDevice(long bytes) { hostToDeviceCopies.incrementAndGet(); hostToDeviceBytes.addAndGet(bytes); }

    /** Counts one copy of {@code bytes} to the host. */
    public void deviceToHost(long bytes) { deviceToHostCopies.incrementAndGet(); deviceToHostBytes.addAndGet(bytes); }

    /** The counts now. */
    public Snapshot snapshot() {
        return new Snapshot(allocations.get(), bytesAllocated.get(), hostToDeviceCopies.get(), hostToDeviceBytes.get(),
                deviceToHostCopies.get(), deviceToHostBytes.get());
    }

    /** Counts at one moment; {@link #minus} gives what happened between two moments. */
    public record Snapshot(long allocations, long bytesAllocated, long hostToDeviceCopies, long hostToDeviceBytes,
                           long deviceToHostCopies, long deviceToHostBytes) {
        /** What happened between {@code o} and this snapshot. */
        public Snapshot minus(Snapshot o) {
            return new Snapshot(allocations - o.allocations, bytesAllocated - o.bytesAllocated,
                    hostToDeviceCopies - o.hostToDeviceCopies, hostToDeviceBytes - o.hostToDeviceBytes,
                    deviceToHostCopies - o.deviceToHostCopies, deviceToHostBytes - o.deviceToHostBytes);
        }
    }
}
