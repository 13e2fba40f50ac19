/* placeholder until lifecycle lands in this session */
int main(void)
{
    return 0;
}
