"""What the stages run on: typed items and their runner (sharding over processes, failure isolation, the run
summary: `workqueue`), what each stage's record depends on (`records`), and the command line every stage shares
(`cli`). Above the pipeline, below the stage shells."""
