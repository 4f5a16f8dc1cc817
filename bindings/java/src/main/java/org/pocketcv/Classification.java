package org.pocketcv;

/** One class of a top-k result: index into the model's outputs, its label, its probability. */
public final class Classification {
  public final int classIndex;
  /** "" when the model has no label for the class. */
  public final String label;
  /** Probability in [0, 1]. */
  public final float score;

  public Classification(int classIndex, String label, float score) {
    this.classIndex = classIndex;
    this.label = label;
    this.score = score;
  }

  @Override
  public String toString() {
    return String.format(java.util.Locale.ROOT, "%s %.2f", label.isEmpty() ? "#" + classIndex : label, score);
  }
}
