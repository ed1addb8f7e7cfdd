// Optim module
