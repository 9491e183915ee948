// The cost of Trainer.guardEnergy (on by default): two trainers on two copies of one model, one checking the
// relaxation's energy and one not, their steps alternated in one process so that a noisy machine slows both alike:
//   ./mvnw -q -DskipTests install && java --enable-native-access=ALL-UNNAMED [-Dbackend=cpu] [-Dmodel=bench/models/pcx-mlp-gelu.json] \
//     [-Dalg=PC] [-Dbatch=128] [-Dn=5] [-Dsteps=2000] \
//     -cp "modules/predcode-cli/target/predcode-cli.jar:modules/predcode-cli/target/lib/*" bench/guard/GuardCost.java
// PC as PCX runs it (squared error, each sample's own energy, SGD on the beliefs); prints the median step of each and their ratio.
import io.predcode.core.nn.*; import io.predcode.core.pc.*; import io.predcode.core.optim.*; import io.predcode.spi.*;
public class GuardCost {
  public static void main(String[] args) throws Exception {
    int batch = Integer.getInteger("batch", 128), n = Integer.getInteger("n", 5), steps = Integer.getInteger("steps", 2000);
    Algorithm alg = Algorithm.valueOf(System.getProperty("alg", "PC"));
    try (Backend be = Backends.open(System.getProperty("backend", "cpu"))) {
      ModelSpec spec = BuiltinModels.resolve(System.getProperty("model", "bench/models/pcx-mlp-gelu.json"));
      Trainer[] t = new Trainer[2];
      for (int k = 0; k < 2; k++) {
        Model m = Model.create(spec, be, 0);
        PcEngine e = new PcEngine(m, Loss.MSE);
        if (alg.standard()) e.beliefOptimizer(BeliefOptimizer.sgd(0.1f)).energy(Energy.PER_SAMPLE);
        t[k] = new Trainer(e, Adam.adamW(m, 3e-4f, 1e-3f), alg, 0.026f, n).guardEnergy(k == 0);
      }
      java.util.SplittableRandom r = new java.util.SplittableRandom(1);
      int in = t[0].engine().inputSize(), out = t[0].engine().targetSize();
      float[] x = new float[batch * in], y = new float[batch * out];
      for (int i = 0; i < x.length; i++) x[i] = (float) r.nextDouble(-1, 1);
      for (int s = 0; s < batch; s++) y[s * out + s % out] = 1;
      long[][] ns = new long[2][steps];
      for (int i = -300; i < steps; i++)
        for (int j = 0; j < 2; j++) {
          int k = (i & 1) == 0 ? j : 1 - j; // who goes first alternates
          long t0 = System.nanoTime();
          t[k].step(x, y, batch);
          if (i >= 0) ns[k][i] = System.nanoTime() - t0;
        }
      double[] median = new double[2];
      for (int k = 0; k < 2; k++) {
        java.util.Arrays.sort(ns[k]);
        median[k] = ns[k][steps / 2] / 1e3;
      }
      System.out.printf("%s batch %d n %d: energy checked %.1f us, unchecked %.1f us, ratio %.4f%n", alg, batch, n, median[0], median[1], median[0] / median[1]);
    }
  }
}
