-- MLflow's database beside Podium's store (the image creates POSTGRES_DB, podium, itself).
CREATE DATABASE mlflow OWNER podium;
