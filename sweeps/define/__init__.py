"""What a sweep will run: ablation files (`ablations/*.yaml`) expanded into a plan of trials,
each with its parsed config. Imports neither Ray nor MLflow: a typo costs a second."""
