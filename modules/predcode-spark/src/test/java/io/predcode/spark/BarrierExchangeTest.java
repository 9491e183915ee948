package io.predcode.spark;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** A contribution survives its trip as text: every 16-bit character, lone surrogates and NUL included, through Java serialization as Spark's messages use it. */
class BarrierExchangeTest {
    @Test void everyCharacterSurvivesJavaSerialization() throws Exception {
        byte[] all = new byte[2 * 65536]; // each 16-bit value once: 0x0000, the surrogates 0xD800-0xDFFF, 0xFFFF
        ByteBuffer b = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
        for (int c = 0; c < 65536; c++) b.putChar((char) c);
        String text = BarrierExchange.text(all);
        assertEquals(65536, text.length());
        String back = (String) roundTrip(new String[]{text})[0];
        byte[] out = new byte[all.length];
        ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN).asCharBuffer().put(back);
        assertArrayEquals(all, out);
    }

    @Test void aContributionEncodesAndDecodesExactly() {
        Random r = new Random(7);
        for (int n : new int[]{0, 1, 2, 3, 97, 4099}) {
            float[] v = new float[n];
            for (int i = 0; i < n; i++) v[i] = Float.intBitsToFloat(r.nextInt()); // every bit pattern: NaNs, infinities, subnormals, -0
            double[] energies = new double[n % 5]; // none (backprop's), or a few layers'
            for (int i = 0; i < energies.length; i++) energies[i] = Double.longBitsToDouble(r.nextLong());
            Contribution c = new Contribution(v, new double[]{-1.5e300}, new long[]{Long.MAX_VALUE}, new long[]{n}, energies);
            Contribution d = BarrierExchange.decode(BarrierExchange.encode(c));
            for (int i = 0; i < n; i++) assertEquals(Float.floatToRawIntBits(v[i]), Float.floatToRawIntBits(d.values()[i]), "value " + i + " of " + n);
            assertEquals(energies.length, d.energySums().length);
            for (int i = 0; i < energies.length; i++) assertEquals(Double.doubleToRawLongBits(energies[i]), Double.doubleToRawLongBits(d.energySums()[i]), "energy " + i);
            assertEquals(-1.5e300, d.lossSums()[0]);
            assertEquals(Long.MAX_VALUE, d.correct()[0]);
            assertEquals(n, d.samples()[0]);
        }
    }

    /** A block whose energy count does not fit its bytes is refused in one line, not allocated. */
    @Test void aContributionWithMoreEnergiesThanBytesIsRefused() {
        byte[] bytes = BarrierExchange.encode(new Contribution(new float[3], new double[]{1}, new long[]{2}, new long[]{3}, new double[2]));
        for (int count : new int[]{-1, 4, Integer.MAX_VALUE}) {
            ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putInt(24, count);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> BarrierExchange.decode(bytes));
            assertTrue(e.getMessage().contains(count + " energies"), e.getMessage());
        }
    }

    static Object[] roundTrip(Object[] o) throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(o);
        }
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
            return (Object[]) in.readObject();
        }
    }
}
