# PCX's Fashion-MNIST MLP configurations (its examples/discriminative_experiments/MLP/fmnist configs), sourced by
# bench/pcx-fashion-mlp.sh and bench/gpu/check.sh so that both run the same ones: per algorithm, the model (each
# config's own activation: GELU's tanh approximation for PC, leaky ReLU for iPC, ReLU for BP) and its hyperparameters.
# What every run shares (squared error on one-hot targets, batch 128, AdamW with a cosine schedule, inputs in [-1, 1],
# whole batches) is pcx_shared.
pcx_shared=(--loss mse --batch-size 128 --optimizer adamw --lr-schedule cosine)
pcx_bp=(--model bench/models/pcx-mlp-relu.json --algorithm backprop --lr 0.0002751176541841286 --weight-decay 0.0001717093341589651)
pcx_pc=(--model bench/models/pcx-mlp-gelu.json --algorithm pc --energy sample --n 5 --eta 0.026070879231635192 --belief-optimizer sgd:0.1
        --lr 0.0002972210629627541 --weight-decay 0.0018383293983087593)
pcx_ipc=(--model pcx-mlp --algorithm ipc --energy sample --n 8 --eta 0.7996939108085619 --belief-optimizer sgd:0.25
         --lr 0.0002691306332359123 --weight-decay 0.01162214097249978)
