"""zoo-operator: the ZooTrainingJob operator."""
